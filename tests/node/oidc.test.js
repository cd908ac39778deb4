'use strict';
// authn.method oidc against a real tuplecast process: each server trusts an issuer this test runs
// on loopback (oidc-issuer.js), and calls go through Permify's Node client with
// `authorization: Bearer <JWT>` metadata, or over HTTP with fetch.  Expected codes and messages:
// Permify answers every refusal with UNAUTHENTICATED and the ErrorCode name as the message;
// docs/security.md ("Authentication: OIDC") lists which refusal gets which code.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');

const permify = require('@permify/permify-node');
const { startServer, binaryPath, freePort } = require('./server');
const { startIssuer, rsaKey, hmacSign, signingInput, b64u } = require('./oidc-issuer');

const UNAUTHENTICATED = 16;
const AUDIENCE = 'tuplecast-tests';
const DEADLINE_MS = 15000;
const TEST_TIMEOUT_MS = 60000;

const servers = [];
const issuers = [];

after(async () => {
  for (const srv of servers) {
    await srv.kill();
    srv.cleanup();
  }
  for (const iss of issuers) await iss.close();
});

async function issuer() {
  const iss = await startIssuer();
  issuers.push(iss);
  return iss;
}

// A server trusting iss; opts override the authn.oidc flags.
async function server(iss, opts = {}) {
  const flags = {
    'authn-oidc-issuer': iss.url,
    'authn-oidc-audience': AUDIENCE,
    'authn-oidc-refresh-interval': '1h',
    'authn-oidc-backoff-interval': '1h',
    'authn-oidc-backoff-frequency': '100ms',
    'authn-oidc-backoff-max-retries': '1',
    'server-shutdown-grace': '200ms',
    ...opts,
  };
  const args = ['--authn-enabled', '--authn-method', 'oidc'];
  for (const [k, v] of Object.entries(flags)) args.push(`--${k}`, v);
  const srv = await startServer({ engine: 'memory', args });
  servers.push(srv);
  return srv;
}

function now() {
  return Math.floor(Date.now() / 1000);
}

function claims(iss, extra = {}) {
  return { iss: iss.url, aud: AUDIENCE, sub: 'alice', iat: now() - 5, exp: now() + 300, ...extra };
}

async function* deadline(call, options) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), DEADLINE_MS);
  try {
    return yield* call.next(call.request, { ...options, signal: ac.signal });
  } finally {
    clearTimeout(timer);
  }
}

// Tenancy.List with the token (none when token is null).
function list(srv, token) {
  const mw = token === null ? [deadline] : [permify.grpc.newAccessTokenInterceptor(token), deadline];
  const client = permify.grpc.newClient({ endpoint: srv.endpoint, cert: null, pk: null,
    certChain: null, insecure: true }, ...mw);
  return client.tenancy.list({ pageSize: 10 });
}

async function expectOk(srv, token) {
  const res = await list(srv, token);
  assert.ok(Array.isArray(res.tenants), `expected a tenant list, got ${JSON.stringify(res)}`);
}

async function expectRefused(srv, token, message) {
  try {
    await list(srv, token);
  } catch (err) {
    assert.equal(err.code, UNAUTHENTICATED, `code: got ${err.code} ${err.details}`);
    assert.equal(err.details, message);
    return;
  }
  assert.fail(`expected UNAUTHENTICATED ${message}, but the call succeeded`);
}

function httpList(srv, token) {
  const headers = { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  return fetch(`http://127.0.0.1:${srv.httpPort}/v1/tenants/list`, {
    method: 'POST', headers, body: '{}', signal: AbortSignal.timeout(DEADLINE_MS),
  });
}

// SIGTERM and exit 0: the authenticator's thread, timer and keys are released (ASan checks leaks).
async function stopCleanly(srv) {
  const { code, signal } = await srv.stop();
  assert.equal(code, 0, `exit ${code} ${signal}\n${srv.stderr()}`);
}

async function until(what, cond, ms = 10000) {
  const end = Date.now() + ms;
  for (let pause = 10; !(await cond()); pause = Math.min(pause * 2, 100)) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pause));
  }
}

test('tokens: valid, expired, early, wrong issuer or audience, bad signature, bad claims',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const iss = await issuer();
    const rsa = iss.addRsaKey('r1');
    const hmac = iss.addHmacKey('h1');
    const srv = await server(iss);

    await t.test('valid RS256 and HS256 tokens are admitted', async () => {
      await expectOk(srv, rsa.sign(claims(iss)));
      await expectOk(srv, hmac.sign(claims(iss)));
      await expectOk(srv, rsa.sign(claims(iss, { aud: ['other', AUDIENCE] })));
    });
    await t.test('no authorization header', async () => {
      await expectRefused(srv, null, 'ERROR_CODE_MISSING_BEARER_TOKEN');
    });
    await t.test('expired, and not yet valid', async () => {
      // Beyond the default clock_skew of 5 s on either side.
      await expectRefused(srv, rsa.sign(claims(iss, { exp: now() - 6 })), 'ERROR_CODE_INVALID_BEARER_TOKEN');
      await expectRefused(srv, rsa.sign(claims(iss, { nbf: now() + 60 })), 'ERROR_CODE_INVALID_BEARER_TOKEN');
    });
    await t.test('wrong or missing issuer', async () => {
      await expectRefused(srv, rsa.sign(claims(iss, { iss: `${iss.url}/other` })), 'ERROR_CODE_INVALID_ISSUER');
      await expectRefused(srv, rsa.sign(claims(iss, { iss: undefined })), 'ERROR_CODE_INVALID_ISSUER');
    });
    await t.test('wrong audience', async () => {
      await expectRefused(srv, rsa.sign(claims(iss, { aud: 'someone-else' })), 'ERROR_CODE_INVALID_AUDIENCE');
      await expectRefused(srv, rsa.sign(claims(iss, { aud: ['a', 'b'] })), 'ERROR_CODE_INVALID_AUDIENCE');
    });
    await t.test('bad signature: another key signed it under kid r1', async () => {
      const forged = rsaKey('r1').sign(claims(iss));
      await expectRefused(srv, forged, 'ERROR_CODE_INVALID_BEARER_TOKEN');
      const good = rsa.sign(claims(iss)).split('.');
      const tampered = `${good[0]}.${b64u(JSON.stringify(claims(iss, { sub: 'mallory' })))}.${good[2]}`;
      await expectRefused(srv, tampered, 'ERROR_CODE_INVALID_BEARER_TOKEN');
    });
    await t.test('alg none, and HS256 keyed with the RSA public key (alg confusion)', async () => {
      const none = `${signingInput({ alg: 'none', typ: 'JWT', kid: 'r1' }, claims(iss))}.`;
      await expectRefused(srv, none, 'ERROR_CODE_INVALID_BEARER_TOKEN');
      for (const secret of [JSON.stringify(rsa.jwk), rsa.publicKey.export({ type: 'spki', format: 'pem' })]) {
        await expectRefused(srv, hmacSign(secret, 'r1', claims(iss)), 'ERROR_CODE_INVALID_BEARER_TOKEN');
      }
      // The HMAC key's kid with an RS256 header: its secret is no RSA key.
      await expectRefused(srv, rsa.sign(claims(iss), { kid: 'h1' }), 'ERROR_CODE_INVALID_BEARER_TOKEN');
    });
    await t.test('malformed claims', async () => {
      await expectRefused(srv, rsa.sign('[1,2]'), 'ERROR_CODE_INVALID_CLAIMS');
      await expectRefused(srv, rsa.sign(claims(iss, { exp: 'tomorrow' })), 'ERROR_CODE_INVALID_CLAIMS');
      await expectRefused(srv, 'not.a.jwt', 'ERROR_CODE_INVALID_BEARER_TOKEN');
    });
    await t.test('HTTP: 200 with a valid token, 401 and the code otherwise', async () => {
      const ok = await httpList(srv, rsa.sign(claims(iss)));
      assert.equal(ok.status, 200);
      assert.ok(Array.isArray((await ok.json()).tenants));
      for (const [token, message] of [[null, 'ERROR_CODE_MISSING_BEARER_TOKEN'],
        [rsa.sign(claims(iss, { aud: 'x' })), 'ERROR_CODE_INVALID_AUDIENCE']]) {
        const res = await httpList(srv, token);
        assert.equal(res.status, 401);
        assert.deepEqual(await res.json(), { code: UNAUTHENTICATED, message, details: [] });
      }
    });
    await stopCleanly(srv);
  });

test('clock_skew: times within it are admitted, beyond it refused; 0s is Permify\'s exact rule',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    const iss = await issuer();
    const rsa = iss.addRsaKey('r1');
    const skewed = await server(iss, { 'authn-oidc-clock-skew': '30s' });
    await expectOk(skewed, rsa.sign(claims(iss, { exp: now() - 10 })));
    await expectOk(skewed, rsa.sign(claims(iss, { nbf: now() + 10, iat: now() + 10 })));
    await expectRefused(skewed, rsa.sign(claims(iss, { exp: now() - 31 })), 'ERROR_CODE_INVALID_BEARER_TOKEN');
    await expectRefused(skewed, rsa.sign(claims(iss, { nbf: now() + 40 })), 'ERROR_CODE_INVALID_BEARER_TOKEN');
    await expectRefused(skewed, rsa.sign(claims(iss, { iat: now() + 40 })), 'ERROR_CODE_INVALID_BEARER_TOKEN');
    const exact = await server(iss, { 'authn-oidc-clock-skew': '0s' });
    await expectOk(exact, rsa.sign(claims(iss, { exp: now() + 5 })));
    await expectRefused(exact, rsa.sign(claims(iss, { exp: now() })), 'ERROR_CODE_INVALID_BEARER_TOKEN');
    await expectRefused(exact, rsa.sign(claims(iss, { nbf: now() + 3 })), 'ERROR_CODE_INVALID_BEARER_TOKEN');
  });

test('valid_methods RS256 only; an unknown kid refreshes the keys once, then waits',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const iss = await issuer();
    const r1 = iss.addRsaKey('r1');
    const h1 = iss.addHmacKey('h1');
    const srv = await server(iss, { 'authn-oidc-valid-methods': 'RS256' });
    await expectOk(srv, r1.sign(claims(iss)));

    await t.test('an HS256 token is refused though its key is served', async () => {
      await expectRefused(srv, h1.sign(claims(iss)), 'ERROR_CODE_INVALID_BEARER_TOKEN');
    });
    await t.test('key rotation: a token of a new key works after one refresh', async () => {
      const served = iss.jwksServed;
      const r2 = iss.addRsaKey('r2');
      // Two calls at once with the new kid share the one refresh.
      await Promise.all([expectOk(srv, r2.sign(claims(iss))), expectOk(srv, r2.sign(claims(iss)))]);
      assert.equal(iss.jwksServed, served + 1);
      await expectOk(srv, r2.sign(claims(iss)));
      assert.equal(iss.jwksServed, served + 1);
    });
    await t.test('a second unknown kid within backoff_interval is refused at once', async () => {
      const served = iss.jwksServed;
      const r3 = iss.addRsaKey('r3');
      await expectRefused(srv, r3.sign(claims(iss)), 'ERROR_CODE_INVALID_BEARER_TOKEN');
      assert.equal(iss.jwksServed, served);
    });
    await stopCleanly(srv);
  });

test('issuer down later: cached keys keep working; back up: the periodic refresh works',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    const iss = await issuer();
    const r1 = iss.addRsaKey('r1');
    const srv = await server(iss, { 'authn-oidc-refresh-interval': '300ms',
      'authn-oidc-backoff-frequency': '50ms', 'authn-oidc-backoff-max-retries': '2' });
    await expectOk(srv, r1.sign(claims(iss)));

    iss.up = false;
    // One refresh = 1 + 2 retries; wait for two refreshes to have failed.
    await until('failed refreshes', () => iss.jwksRefused >= 6);
    await expectOk(srv, r1.sign(claims(iss)));
    assert.match(srv.stderr(), /cannot refresh the issuer's keys .*keeping the 1 cached/);

    const r2 = iss.addRsaKey('r2');
    iss.keys = [r2];
    iss.up = true;
    const served = iss.jwksServed;
    await until('a refresh after the issuer came back', () => iss.jwksServed > served);
    await expectOk(srv, r2.sign(claims(iss)));
    await expectRefused(srv, r1.sign(claims(iss)), 'ERROR_CODE_INVALID_BEARER_TOKEN');
    await stopCleanly(srv);
  });

test('shutdown while a call waits for a key refresh the issuer never answers',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    const iss = await issuer();
    iss.addRsaKey('r1');
    const srv = await server(iss);
    iss.hang = true;
    const waiting = list(srv, rsaKey('r9').sign(claims(iss))).then(() => null, (err) => err);
    await until('the refresh to reach the issuer', () => iss.jwksHung >= 1);
    const started = Date.now();
    await stopCleanly(srv);
    // The transfer is aborted, not waited out (curl's own limit is 10 s).
    assert.ok(Date.now() - started < 5000, `stop took ${Date.now() - started} ms`);
    const err = await waiting;
    // The gRPC server cancels what is left after server.shutdown_grace (UNAVAILABLE).
    assert.ok(err && err.code === 14, `the waiting call: ${err && `${err.code} ${err.details}`}`);
  });

// Runs `tuplecast serve` expecting it to exit before listening; resolves {code, stderr, ms}.
function runToExit(extraArgs) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const proc = spawn(binaryPath(), ['serve', '--grpc-port', '0', '--http-enabled=false',
      '--database-engine', 'memory', '--authn-enabled', '--authn-method', 'oidc', ...extraArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`still running: ${stderr}`)); },
      DEADLINE_MS);
    proc.once('exit', (code) => { clearTimeout(timer); resolve({ code, stderr, ms: Date.now() - started }); });
  });
}

test('start-up: an unreachable issuer, after its retries, and backoff_frequency 0 stop the server',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const down = await runToExit(['--authn-oidc-issuer', url, '--authn-oidc-audience', AUDIENCE,
      '--authn-oidc-backoff-frequency', '200ms',
      '--authn-oidc-backoff-max-retries', '2']);
    assert.equal(down.code, 2);
    assert.match(down.stderr, new RegExp(`tuplecast: authn\\.oidc\\.issuer: cannot fetch the issuer's keys: ` +
      `${url}/\\.well-known/openid-configuration: .*\n$`));
    assert.equal((down.stderr.match(/retry \d of 2/g) || []).length, 2);
    assert.ok(down.ms >= 400, `gave up after ${down.ms} ms, before two 200 ms pauses`);

    const zero = await runToExit(['--authn-oidc-issuer', url, '--authn-oidc-audience', AUDIENCE]);
    assert.equal(zero.code, 2);
    assert.match(zero.stderr, /(?:^|\n)tuplecast: authn\.oidc\.backoff_frequency: must be greater than 0 .*\n$/);
  });

test('start-up: settings that could not work are refused with one line naming the key',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    const ok = ['--authn-oidc-issuer', 'http://127.0.0.1:1', '--authn-oidc-audience', AUDIENCE,
      '--authn-oidc-backoff-frequency', '1s'];
    const cases = [
      [['--authn-oidc-issuer', 'ftp://x'], 'authn.oidc.issuer: "ftp://x" is not an http:// or https:// URL'],
      [['--authn-oidc-audience', ''], 'authn.oidc.audience: empty, so every token would be refused'],
      [['--authn-oidc-refresh-interval', '0s'], 'authn.oidc.refresh_interval: must be greater than 0'],
      [['--authn-oidc-backoff-interval', '0s'], 'authn.oidc.backoff_interval: must be greater than 0'],
      [['--authn-oidc-backoff-max-retries', '0'], 'authn.oidc.backoff_max_retries: must be greater than 0'],
      [['--authn-oidc-clock-skew', '6m'], 'authn.oidc.clock_skew: must be between 0s and 5m'],
      [['--authn-oidc-valid-methods', 'RS256,none'], 'authn.oidc.valid_methods: none is not one of RS256 ' +
        'RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 HS256 HS384 HS512'],
    ];
    for (const [args, line] of cases) {
      const res = await runToExit([...ok, ...args]);
      assert.equal(res.code, 2, `${args.join(' ')}: exit ${res.code}\n${res.stderr}`);
      assert.ok(res.stderr.endsWith(`\ntuplecast: ${line}\n`), `${args.join(' ')}:\n${res.stderr}`);
    }
  });
