'use strict';
// Permify's Node client with preshared keys: its own access-token interceptor
// (newAccessTokenInterceptor, which sets `authorization: Bearer <token>` metadata) against a
// tuplecast started with authn.method preshared.  Permify answers a wrong key UNAUTHENTICATED
// ERROR_CODE_INVALID_KEY; a missing header is UNAUTHENTICATED ERROR_CODE_MISSING_BEARER_TOKEN
// here (README: Permify answers UNKNOWN).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const permify = require('@permify/permify-node');
const { startServer } = require('./server');

const UNAUTHENTICATED = 16;
const KEY = 'node-key-1';

let srv = null;

before(async () => {
  srv = await startServer({
    engine: 'memory',
    args: ['--authn-enabled', '--authn-method', 'preshared', '--authn-preshared-keys', `other,${KEY}`],
  });
});

after(async () => {
  if (!srv) return;
  const { code } = await srv.stop();
  srv.cleanup();
  assert.equal(code, 0, `tuplecast exited with ${code}\n${srv.stderrTail()}`);
  assert.ok(!srv.stderr().includes(KEY), 'a key reached the log');
});

function client(...interceptors) {
  return permify.grpc.newClient({
    endpoint: srv.endpoint, cert: null, pk: null, certChain: null, insecure: true,
  }, ...interceptors);
}

async function refused(promise, message) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, UNAUTHENTICATED, `got ${err.code} ${err.details}`);
    assert.equal(err.details, message);
    return true;
  });
}

test('the right key, through the client\'s access-token interceptor', async () => {
  const c = client(permify.grpc.newAccessTokenInterceptor(KEY));
  const created = await c.tenancy.create({ id: 'node-authn', name: 'n' });
  assert.equal(created.tenant.id, 'node-authn');
  const list = await c.tenancy.list({ pageSize: 10 });
  assert.ok(list.tenants.some((t) => t.id === 'node-authn'));
  const w = await c.schema.write({ tenantId: 'node-authn', schema: 'entity user {}' });
  assert.ok(w.schemaVersion.length > 0);
});

test('a wrong key is UNAUTHENTICATED ERROR_CODE_INVALID_KEY', async () => {
  const c = client(permify.grpc.newAccessTokenInterceptor('not-the-key'));
  await refused(c.tenancy.list({ pageSize: 10 }), 'ERROR_CODE_INVALID_KEY');
  await refused(c.schema.list({ tenantId: 't1', pageSize: 10 }), 'ERROR_CODE_INVALID_KEY');
});

test('no key is UNAUTHENTICATED ERROR_CODE_MISSING_BEARER_TOKEN', async () => {
  await refused(client().tenancy.list({ pageSize: 10 }), 'ERROR_CODE_MISSING_BEARER_TOKEN');
});

test('a Watch is authenticated when it opens', async () => {
  const stream = client(permify.grpc.newAccessTokenInterceptor('not-the-key'))
    .watch.watch({ tenantId: 't1' });
  await assert.rejects((async () => { for await (const _ of stream) { /* nothing */ } })(),
    (err) => err.code === UNAUTHENTICATED && err.details === 'ERROR_CODE_INVALID_KEY');
});
