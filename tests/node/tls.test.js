'use strict';
// Permify's Node client over TLS: tuplecast serves gRPC with a certificate made here by the
// openssl binary (a CA and a leaf for 127.0.0.1 and localhost); the client trusts only that CA
// (newClient's `cert`), writes a schema and tuples, reads them back and receives a change on a
// Watch stream.  The server also requires a preshared key, which the client sends with its own
// access-token interceptor over the TLS channel: a TLS client without it is refused.  A plaintext
// client against the same port must fail.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const permify = require('@permify/permify-node');
const { startServer } = require('./server');

const DEADLINE_MS = 10000;
const KEY = 'node-tls-key';
let dir;
let srv;

function openssl(...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCerts() {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-days', '2', '-subj', '/CN=tuplecast-node-ca',
    '-keyout', 'ca.key', '-out', 'ca.pem');
  openssl('req', ...ec, '-subj', '/CN=localhost', '-keyout', 'leaf.key', '-out', 'leaf.csr');
  fs.writeFileSync(path.join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-set_serial', '7', '-days', '2', '-extfile', 'san.cnf', '-out', 'leaf.pem');
}

function client(secure, key = KEY) {
  const interceptors = key ? [permify.grpc.newAccessTokenInterceptor(key)] : [];
  return permify.grpc.newClient({
    endpoint: srv.endpoint,
    cert: secure ? fs.readFileSync(path.join(dir, 'ca.pem')) : null,
    pk: null,
    certChain: null,
    insecure: !secure,
  }, ...interceptors);
}

const opts = () => ({ signal: AbortSignal.timeout(DEADLINE_MS) });

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tuplecast-node-tls-'));
  makeCerts();
  const cert = path.join(dir, 'leaf.pem');
  const key = path.join(dir, 'leaf.key');
  srv = await startServer({
    engine: 'memory',
    args: ['--grpc-tls-enabled', '--grpc-tls-cert-path', cert, '--grpc-tls-key-path', key,
      '--authn-enabled', '--authn-method', 'preshared', '--authn-preshared-keys', KEY],
  });
});

after(async () => {
  if (srv) {
    await srv.kill();
    srv.cleanup();
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('Permify\'s Node client over TLS: write, read, watch', { timeout: 60000 }, async () => {
  const c = client(true);
  const tenantId = 't1';
  await c.schema.write({
    tenantId,
    schema: 'entity user {}\nentity doc {\n  relation owner @user\n}\n',
  }, opts());
  const write = (id) => c.data.write({
    tenantId,
    metadata: { schemaVersion: '' },
    tuples: [{ entity: { type: 'doc', id }, relation: 'owner',
      subject: { type: 'user', id: 'alice', relation: '' } }],
    attributes: [],
  }, opts());
  const first = await write('d0');
  // Watch from the first write's token: the next change is the second write.
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), DEADLINE_MS);
  const stream = c.watch.watch({ tenantId, snapToken: first.snapToken },
    { signal: ac.signal })[Symbol.asyncIterator]();
  const written = await write('d1');
  const change = await stream.next();
  clearTimeout(timer);
  ac.abort();
  assert.equal(change.value.changes.snapToken, written.snapToken);
  assert.equal(change.value.changes.dataChanges[0].type.tuple.entity.id, 'd1');
  const read = await c.data.readRelationships({
    tenantId,
    metadata: { snapToken: written.snapToken },
    filter: { entity: { type: 'doc', ids: ['d0', 'd1'] } },
    pageSize: 10,
    continuousToken: '',
  }, opts());
  assert.deepEqual(read.tuples.map((t) => t.entity.id).sort(), ['d0', 'd1']);
});

test('over TLS, a call without the key is refused', { timeout: 60000 }, async () => {
  await assert.rejects(client(true, null).tenancy.list({ pageSize: 10, continuousToken: '' }, opts()),
    (err) => err.code === 16 && /ERROR_CODE_MISSING_BEARER_TOKEN/.test(err.details));
});

test('a plaintext client against the TLS port fails', { timeout: 60000 }, async () => {
  await assert.rejects(client(false).tenancy.list({ pageSize: 10, continuousToken: '' }, opts()),
    (err) => err.code === 14 || err.code === 4); // UNAVAILABLE, or the deadline
});
