'use strict';
// The gRPC half of scripts/compat: tokens crossing both ways and Permify's
// writes in tuplecast's Watch, through Permify's own Node client
// (@permify/permify-node, installed in tests/node by npm).  scripts/compat
// runs it after the HTTP checks, in the tenant they set up.
//
//   node scripts/compat_grpc.js PERMIFY_GRPC TUPLECAST_GRPC TENANT
//
// Prints one line per check ("ok - ..." / "not ok - ..."); exit code 0.
const path = require('node:path');
const { createRequire } = require('node:module');

const need = createRequire(path.join(__dirname, '..', 'tests', 'node', 'package.json'));
const permify = need('@permify/permify-node');
const { CheckResult } = permify.grpc.base;

const [permifyAddr, tuplecastAddr, tenantId] = process.argv.slice(2);
const DEADLINE_MS = 10000;

function client(endpoint) {
  return permify.grpc.newClient({ endpoint, cert: null, pk: null, certChain: null, insecure: true });
}

function ownerTuple(doc, user) {
  return {
    entity: { type: 'doc', id: doc },
    relation: 'owner',
    subject: { type: 'user', id: user, relation: '' },
  };
}

async function writeOwner(c, doc, user) {
  const res = await c.data.write({ tenantId, metadata: { schemaVersion: '' }, tuples: [ownerTuple(doc, user)] });
  return res.snapToken;
}

async function canEdit(c, doc, user, snapToken) {
  const res = await c.permission.check({
    tenantId,
    metadata: { snapToken, schemaVersion: '', depth: 20 },
    entity: { type: 'doc', id: doc },
    permission: 'edit',
    subject: { type: 'user', id: user, relation: '' },
  });
  return res.can;
}

async function owners(c, doc, snapToken) {
  const res = await c.data.readRelationships({
    tenantId,
    metadata: { snapToken },
    filter: { entity: { type: 'doc', ids: [doc] }, relation: 'owner' },
    pageSize: 100,
  });
  return res.tuples.map((t) => t.subject.id).join(' ');
}

// X of a token in Permify's new format ("X:xmin:xmax:xip"), or ''.
function tokenX(token) {
  const m = /^(\d+):\d+:\d+:/.exec(Buffer.from(token || '', 'base64').toString());
  return m ? m[1] : '';
}

// The first message of a Watch from `from` that carries user `user`; its token.
async function watchFor(c, from, user) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), DEADLINE_MS);
  try {
    for await (const res of c.watch.watch({ tenantId, snapToken: from }, { signal: ac.signal })) {
      const changes = res.changes.dataChanges || [];
      if (changes.some((dc) => dc.type && dc.type.tuple && dc.type.tuple.subject.id === user))
        return res.changes.snapToken;
    }
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return '';
}

function report(what, ok) {
  console.log(`${ok ? 'ok' : 'not ok'} - gRPC: ${what}`);
}

async function main() {
  const p = client(permifyAddr);
  const t = client(tuplecastAddr);
  const w0 = await writeOwner(t, 'g1', 'erin');
  report("Permify's Check at tuplecast's write token: erin allowed",
    (await canEdit(p, 'g1', 'erin', w0)) === CheckResult.CHECK_RESULT_ALLOWED);
  const message = watchFor(t, w0, 'frank');
  const p1 = await writeOwner(p, 'g2', 'frank');
  const m = await message;
  report("Permify's write reaches tuplecast's Watch", m !== '');
  report("its message names Permify's transaction X", m !== '' && tokenX(m) === tokenX(p1));
  report("Permify's Check at that message's token: frank allowed",
    m !== '' && (await canEdit(p, 'g2', 'frank', m)) === CheckResult.CHECK_RESULT_ALLOWED);
  report("tuplecast reads at Permify's write token: doc:g2's owner frank",
    (await owners(t, 'g2', p1)) === 'frank');
}

main().catch((e) => {
  report(`the checks could not run: ${e.message}`, false);
}).finally(() => process.exit(0));
