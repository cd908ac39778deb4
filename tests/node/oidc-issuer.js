'use strict';
// A throwaway OpenID Connect issuer on loopback for the OIDC tests: it serves
// /.well-known/openid-configuration and /jwks over node:http on port 0, with keys made at test
// time, and signs JWTs (RS256 with node:crypto, HS256 with an HMAC).
//
//   const iss = await startIssuer();     // iss.url = "http://127.0.0.1:<port>"
//   const k = iss.addRsaKey('r1');        // served from now on; k.sign(claims) -> JWT
//   const h = iss.addHmacKey('h1');
//   iss.up = false;                       // requests are answered by closing the connection
//   iss.hang = true;                      // /jwks requests get no answer (iss.jwksHung counts them)
//   iss.jwksServed, iss.jwksRefused       // request counters

const crypto = require('node:crypto');
const http = require('node:http');

function b64u(data) {
  return Buffer.from(data).toString('base64url');
}

// header and claims are objects, or strings used as the raw JSON text.
function signingInput(header, claims) {
  const text = (v) => (typeof v === 'string' ? v : JSON.stringify(v));
  return `${b64u(text(header))}.${b64u(text(claims))}`;
}

function rsaKey(kid) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  return {
    kid,
    jwk,
    publicKey,
    sign(claims, header = {}) {
      const input = signingInput({ alg: 'RS256', typ: 'JWT', kid, ...header }, claims);
      return `${input}.${b64u(crypto.sign('sha256', Buffer.from(input), privateKey))}`;
    },
  };
}

function hmacSign(secret, kid, claims, header = {}) {
  const input = signingInput({ alg: 'HS256', typ: 'JWT', kid, ...header }, claims);
  return `${input}.${b64u(crypto.createHmac('sha256', secret).update(input).digest())}`;
}

function hmacKey(kid) {
  const secret = crypto.randomBytes(32);
  return {
    kid,
    jwk: { kty: 'oct', k: b64u(secret), kid, alg: 'HS256' },
    sign: (claims, header) => hmacSign(secret, kid, claims, header),
  };
}

async function startIssuer() {
  const iss = { up: true, hang: false, keys: [], jwksServed: 0, jwksRefused: 0, jwksHung: 0,
    discoveryServed: 0 };
  const server = http.createServer((req, res) => {
    if (!iss.up) {
      if (req.url === '/jwks') iss.jwksRefused++;
      req.socket.destroy();
      return;
    }
    if (iss.hang && req.url === '/jwks') {
      iss.jwksHung++;
      return;
    }
    let body;
    if (req.url === '/.well-known/openid-configuration') {
      iss.discoveryServed++;
      body = { issuer: iss.url, jwks_uri: `${iss.url}/jwks` };
    } else if (req.url === '/jwks') {
      iss.jwksServed++;
      body = { keys: iss.keys.map((k) => k.jwk) };
    } else {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  iss.url = `http://127.0.0.1:${server.address().port}`;
  iss.addRsaKey = (kid) => { const k = rsaKey(kid); iss.keys.push(k); return k; };
  iss.addHmacKey = (kid) => { const k = hmacKey(kid); iss.keys.push(k); return k; };
  iss.close = () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); });
  return iss;
}

module.exports = { startIssuer, rsaKey, hmacSign, signingInput, b64u };
