'use strict';
// Permify's official Node client (@permify/permify-node) against a real tuplecast process.
// Expected values are Permify v1.7.3's behaviour (as its source defines it; the facts are restated
// in the comments and test names), not what the server happens to return, except where tuplecast's README lists a deliberate
// difference from Permify ("README: ..." in the test names):
//   * calls for a tenant that does not exist → NOT_FOUND ERROR_CODE_TENANT_NOT_FOUND;
//   * Tenancy.List / Schema.List with page_size 0 → a page of 50;
//   * a malformed snap token → INVALID_ARGUMENT with a message saying why.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const permify = require('@permify/permify-node');
// The client's own tests build Any values with this module (see dist/src/grpc-clients.test.js).
const { Any } = require('@permify/permify-node/dist/src/grpc/generated/google/protobuf/any');
const { startServer } = require('./server');

const base = permify.grpc.base;

// gRPC status codes (numbers are fixed by the gRPC spec).
const OK = 0;
const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;
const INTERNAL = 13;
const CODE_NAMES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED',
  'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION',
  'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS',
  'UNAUTHENTICATED'];

const CALL_DEADLINE_MS = 15000;
const TEST_TIMEOUT_MS = 120000;

// Permify's example schema (user, organization, repository).
const SCHEMA_EXAMPLE = `entity user {}
entity organization {
  relation admin @user
  relation member @user @organization#admin
  attribute ip_range string[]
  permission view = admin or member
}
entity repository {
  relation parent @organization
  relation owner @user
  attribute is_public boolean
  permission edit = parent.admin or owner
  permission read = is_public or edit
}
`;

// The example schema plus an entity carrying the remaining six of Permify's attribute types.
const SCHEMA_DATA = `${SCHEMA_EXAMPLE}entity project {
  relation owner @user
  attribute name string
  attribute stars integer
  attribute score double
  attribute flags boolean[]
  attribute sizes integer[]
  attribute weights double[]
}
`;

let srv = null;
let client = null;
let anyFailure = false;

// Every call gets a deadline through a client interceptor (newClient(conf, ...interceptors)), so a
// hung server fails the test instead of hanging it.
// (Built by hand rather than with AbortSignal.any, which Debian 12's Node 18 lacks.)
async function* deadlineMiddleware(call, options) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), CALL_DEADLINE_MS);
  const outer = options.signal;
  const onAbort = () => ac.abort();
  if (outer) {
    if (outer.aborted) ac.abort();
    else outer.addEventListener('abort', onAbort);
  }
  try {
    return yield* call.next(call.request, { ...options, signal: ac.signal });
  } finally {
    clearTimeout(timer);
    if (outer) outer.removeEventListener('abort', onAbort);
  }
}

function tracked(fn) {
  return async (t) => {
    try {
      await fn(t);
    } catch (err) {
      anyFailure = true;
      throw err;
    }
  };
}

function tcTest(name, fn) {
  test(name, { timeout: TEST_TIMEOUT_MS }, tracked(fn));
}

function sub(t, name, fn) {
  return t.test(name, tracked(fn));
}

before(async () => {
  srv = await startServer({});
  client = permify.grpc.newClient({
    endpoint: srv.endpoint,
    cert: null,
    pk: null,
    certChain: null,
    insecure: true,
  }, deadlineMiddleware);
});

after(async () => {
  if (srv) {
    if (anyFailure) {
      process.stderr.write(`\n===== tuplecast stderr (${srv.bin} ${srv.args.join(' ')}) =====\n` +
        `${srv.stderrTail(400)}\n===== end of tuplecast stderr =====\n`);
    }
    await srv.kill();
    srv.cleanup();
  }
});

// ---------------------------------------------------------------------------------------------
// helpers

function tuple(str) {
  // "type:id#relation@stype:sid[#srel]"
  const m = /^([^:]+):([^#]+)#([^@]+)@([^:]+):([^#]+)(?:#(.+))?$/.exec(str);
  if (!m) throw new Error(`bad tuple literal ${str}`);
  return {
    entity: { type: m[1], id: m[2] },
    relation: m[3],
    subject: { type: m[4], id: m[5], relation: m[6] || '' },
  };
}

function tupleStr(t) {
  const s = t.subject;
  return `${t.entity.type}:${t.entity.id}#${t.relation}@${s.type}:${s.id}${s.relation ? `#${s.relation}` : ''}`;
}

const TYPE_PREFIX = 'type.googleapis.com/base.v1.';

// Build a google.protobuf.Any holding one of the base.v1 value wrappers, the client's way:
// encode the wrapper with the generated codec and pack it with its type URL.
function anyOf(wrapper, data) {
  const codec = base[wrapper];
  return Any.fromPartial({
    typeUrl: TYPE_PREFIX + wrapper,
    value: Buffer.from(codec.encode(codec.fromPartial({ data })).finish()),
  });
}

function attr(entity, name, wrapper, data) {
  const [type, id] = entity.split(':');
  return { entity: { type, id }, attribute: name, value: anyOf(wrapper, data) };
}

// Decode an Attribute from a response into a comparable plain object.
function attrView(a) {
  const typeUrl = a.value ? a.value.typeUrl : '(no value)';
  assert.ok(typeUrl.startsWith(TYPE_PREFIX), `unexpected Any type URL ${typeUrl}`);
  const wrapper = typeUrl.slice(TYPE_PREFIX.length);
  const codec = base[wrapper];
  assert.ok(codec && codec.decode, `unknown value wrapper ${typeUrl}`);
  const decoded = codec.decode(a.value.value);
  return { key: `${a.entity.type}:${a.entity.id}$${a.attribute}`, type: wrapper, data: decoded.data };
}

function view(key, type, data) {
  return { key, type, data };
}

async function expectError(promise, code, message) {
  let result;
  try {
    result = await promise;
  } catch (err) {
    assert.equal(typeof err.code, 'number', `expected a gRPC ClientError, got ${err && err.stack}`);
    const got = `${CODE_NAMES[err.code] || err.code} ${JSON.stringify(err.details)}`;
    assert.equal(err.code, code, `gRPC code: expected ${CODE_NAMES[code]}, got ${got}`);
    if (message instanceof RegExp) {
      assert.match(err.details, message, `gRPC message: got ${got}`);
    } else {
      assert.equal(err.details, message, `gRPC message: got ${got}`);
    }
    return err;
  }
  assert.fail(`expected ${CODE_NAMES[code]} ${message}, but the call succeeded: ${JSON.stringify(result)}`);
}

// README: a call for a tenant that does not exist answers NOT_FOUND ERROR_CODE_TENANT_NOT_FOUND.
async function expectTenantNotFound(tenantId, snapToken = '') {
  const msg = 'ERROR_CODE_TENANT_NOT_FOUND';
  const tuples = [tuple('organization:1#admin@user:a')];
  await expectError(client.schema.write({ tenantId, schema: SCHEMA_EXAMPLE }), NOT_FOUND, msg);
  await expectError(client.schema.read({ tenantId, metadata: { schemaVersion: '' } }), NOT_FOUND, msg);
  await expectError(client.schema.list({ tenantId, pageSize: 10 }), NOT_FOUND, msg);
  await expectError(client.data.write({ tenantId, metadata: { schemaVersion: '' }, tuples }), NOT_FOUND, msg);
  await expectError(client.data.writeRelationships({ tenantId, metadata: { schemaVersion: '' }, tuples }), NOT_FOUND, msg);
  await expectError(readTuples(tenantId, {}, snapToken), NOT_FOUND, msg);
  await expectError(readAttrs(tenantId, {}, snapToken), NOT_FOUND, msg);
  await expectError(client.data.delete({ tenantId, tupleFilter: { entity: { type: 'organization', ids: ['1'] } }, attributeFilter: {} }), NOT_FOUND, msg);
  await expectError(client.data.deleteRelationships({ tenantId, filter: { entity: { type: 'organization', ids: ['1'] } } }), NOT_FOUND, msg);
}

async function createTenant(id, name = id) {
  const res = await client.tenancy.create({ id, name });
  assert.equal(res.tenant.id, id);
  return res.tenant;
}

async function writeSchema(tenantId, schema) {
  const res = await client.schema.write({ tenantId, schema });
  assert.match(res.schemaVersion, /^[0-9a-v]{20}$/, 'schema version is an rs/xid string');
  return res.schemaVersion;
}

async function write(tenantId, tuples, attributes = [], schemaVersion = '') {
  const res = await client.data.write({
    tenantId,
    metadata: { schemaVersion },
    tuples: tuples.map((t) => (typeof t === 'string' ? tuple(t) : t)),
    attributes,
  });
  assert.equal(typeof res.snapToken, 'string');
  assert.notEqual(res.snapToken, '', 'Data.Write returns a snap token');
  return res.snapToken;
}

async function readTuples(tenantId, filter, snapToken = '', pageSize = 0, continuousToken = '') {
  return client.data.readRelationships({
    tenantId, metadata: { snapToken }, filter, pageSize, continuousToken,
  });
}

async function tuplesAt(tenantId, filter, snapToken = '') {
  const res = await readTuples(tenantId, filter, snapToken, 1000);
  assert.equal(res.continuousToken, '', 'a single page of at most 1000 rows has no continuation');
  return res.tuples.map(tupleStr);
}

async function readAttrs(tenantId, filter, snapToken = '', pageSize = 0, continuousToken = '') {
  return client.data.readAttributes({
    tenantId, metadata: { snapToken }, filter, pageSize, continuousToken,
  });
}

async function attrsAt(tenantId, filter, snapToken = '') {
  const res = await readAttrs(tenantId, filter, snapToken, 1000);
  assert.equal(res.continuousToken, '');
  return res.attributes.map(attrView);
}

// Follow continuous tokens; returns the pages (arrays of items) and checks the last token is "".
async function allPages(fetchPage, itemsOf, maxPages = 100) {
  const pages = [];
  let token = '';
  for (let i = 0; i < maxPages; i++) {
    const res = await fetchPage(token);
    pages.push(itemsOf(res));
    if (res.continuousToken === '') return pages;
    assert.notEqual(res.continuousToken, token, 'continuous token must advance');
    token = res.continuousToken;
  }
  assert.fail(`pagination did not end within ${maxPages} pages`);
}

// rs/xid: 20 chars of base32hex; the first 4 bytes are big-endian Unix seconds.
function xidSeconds(xid) {
  const alphabet = '0123456789abcdefghijklmnopqrstuv';
  let bits = 0n;
  for (const ch of xid.slice(0, 7)) bits = (bits << 5n) | BigInt(alphabet.indexOf(ch));
  return Number(bits >> 3n); // 35 bits -> top 32
}

const rel = (type, relation = '') => ({ type, relation });
const leafCUS = (relation) => ({ type: { $case: 'leaf', leaf: { type: { $case: 'computedUserSet', computedUserSet: { relation } } } } });
const leafTTU = (tupleSet, computed) => ({
  type: {
    $case: 'leaf',
    leaf: { type: { $case: 'tupleToUserSet', tupleToUserSet: { tupleSet: { relation: tupleSet }, computed: { relation: computed } } } },
  },
});
const leafAttr = (name) => ({ type: { $case: 'leaf', leaf: { type: { $case: 'computedAttribute', computedAttribute: { name } } } } });
const union = (...children) => ({
  type: { $case: 'rewrite', rewrite: { rewriteOperation: base.Rewrite_Operation.OPERATION_UNION, children } },
});

// ---------------------------------------------------------------------------------------------
// tenancy

tcTest('tenancy: t1 exists from the start; create and list tenants', async (t) => {
  const initial = await client.tenancy.list({ pageSize: 1000 });
  const t1 = initial.tenants.find((x) => x.id === 't1');
  assert.ok(t1, `t1 is listed from the start, got ${JSON.stringify(initial.tenants.map((x) => x.id))}`);
  assert.equal(t1.name, 'example tenant', 'migration seeds (t1, "example tenant")');
  assert.ok(t1.createdAt instanceof Date && !Number.isNaN(t1.createdAt.getTime()), 't1 has created_at');

  const before = Date.now();
  const created = await client.tenancy.create({ id: 'node-tenant-a', name: 'Node Tenant A' });
  assert.equal(created.tenant.id, 'node-tenant-a');
  assert.equal(created.tenant.name, 'Node Tenant A');
  assert.ok(created.tenant.createdAt instanceof Date, 'created_at is a Timestamp');
  const skew = Math.abs(created.tenant.createdAt.getTime() - before);
  assert.ok(skew < 120000, `created_at ${created.tenant.createdAt.toISOString()} is close to now (UTC)`);

  const listed = await client.tenancy.list({ pageSize: 1000 });
  assert.equal(listed.continuousToken, '', 'fewer rows than page_size: no continuation');
  const ids = listed.tenants.map((x) => x.id);
  assert.ok(ids.includes('t1') && ids.includes('node-tenant-a'), `listed: ${JSON.stringify(ids)}`);
  assert.deepEqual(ids, [...ids].sort(), 'tenants are ordered by id');
  const a = listed.tenants.find((x) => x.id === 'node-tenant-a');
  assert.equal(a.name, 'Node Tenant A');
  assert.equal(a.createdAt.getTime(), created.tenant.createdAt.getTime(), 'same created_at in list and create');

  await sub(t, 'pagination with page_size 1 visits every tenant once', async () => {
    await createTenant('node-tenant-b');
    await createTenant('node-tenant-c');
    const full = (await client.tenancy.list({ pageSize: 1000 })).tenants.map((x) => x.id);
    const pages = await allPages((token) => client.tenancy.list({ pageSize: 1, continuousToken: token }),
      (res) => res.tenants.map((x) => x.id));
    for (const p of pages) assert.equal(p.length, 1, `page of size 1: ${JSON.stringify(pages)}`);
    assert.deepEqual(pages.flat(), full);
  });

  await sub(t, 'README: page_size 0 returns a page of 50 (Permify: empty page + token)', async () => {
    for (let i = 0; i < 55; i++) await createTenant(`node-bulk-${String(i).padStart(2, '0')}`);
    const full = (await client.tenancy.list({ pageSize: 1000 })).tenants.map((x) => x.id);
    assert.ok(full.length > 50, `more than 50 tenants exist (${full.length})`);
    const pages = await allPages((token) => client.tenancy.list({ continuousToken: token }),
      (res) => res.tenants.map((x) => x.id));
    assert.equal(pages[0].length, 50, 'first page holds 50 tenants');
    assert.deepEqual(pages.flat(), full);
  });
});

tcTest('tenancy: duplicate create and delete of an unknown id', async (t) => {
  await createTenant('node-dup', 'first');
  await sub(t, 'duplicate create → INVALID_ARGUMENT ERROR_CODE_UNIQUE_CONSTRAINT', async () => {
    await expectError(client.tenancy.create({ id: 'node-dup', name: 'second' }),
      INVALID_ARGUMENT, 'ERROR_CODE_UNIQUE_CONSTRAINT');
    await expectError(client.tenancy.create({ id: 't1', name: 'again' }),
      INVALID_ARGUMENT, 'ERROR_CODE_UNIQUE_CONSTRAINT');
    const listed = await client.tenancy.list({ pageSize: 1000 });
    const dup = listed.tenants.filter((x) => x.id === 'node-dup');
    assert.equal(dup.length, 1);
    assert.equal(dup[0].name, 'first', 'the failed create did not change the tenant');
  });
  await sub(t, 'delete of an unknown id → NOT_FOUND ERROR_CODE_NOT_FOUND', async () => {
    await expectError(client.tenancy.delete({ id: 'node-never-created' }), NOT_FOUND, 'ERROR_CODE_NOT_FOUND');
  });
});

// ---------------------------------------------------------------------------------------------
// schema

// An EntityDefinition as Permify answers it: each relation, permission and attribute
// carries its own name, and references classify every one of them.
function entityDef(name, { relations = {}, permissions = {}, attributes = {} } = {}) {
  const named = (defs, field) =>
    Object.fromEntries(Object.entries(defs).map(([k, v]) => [k, { name: k, [field]: v }]));
  const R = base.EntityDefinition_Reference;
  const refs = (defs, kind) => Object.keys(defs).map((k) => [k, kind]);
  return {
    name,
    relations: named(relations, 'relationReferences'),
    permissions: named(permissions, 'child'),
    attributes: named(attributes, 'type'),
    references: Object.fromEntries([...refs(relations, R.REFERENCE_RELATION),
      ...refs(attributes, R.REFERENCE_ATTRIBUTE), ...refs(permissions, R.REFERENCE_PERMISSION)]),
  };
}

const EXPECTED_EXAMPLE = {
  entityDefinitions: {
    user: entityDef('user'),
    organization: entityDef('organization', {
      relations: { admin: [rel('user')], member: [rel('user'), rel('organization', 'admin')] },
      permissions: { view: union(leafCUS('admin'), leafCUS('member')) },
      attributes: { ip_range: base.AttributeType.ATTRIBUTE_TYPE_STRING_ARRAY },
    }),
    repository: entityDef('repository', {
      relations: { parent: [rel('organization')], owner: [rel('user')] },
      permissions: {
        edit: union(leafTTU('parent', 'admin'), leafCUS('owner')),
        read: union(leafAttr('is_public'), leafCUS('edit')),
      },
      attributes: { is_public: base.AttributeType.ATTRIBUTE_TYPE_BOOLEAN },
    }),
  },
  ruleDefinitions: {},
  references: {
    user: base.SchemaDefinition_Reference.REFERENCE_ENTITY,
    organization: base.SchemaDefinition_Reference.REFERENCE_ENTITY,
    repository: base.SchemaDefinition_Reference.REFERENCE_ENTITY,
  },
};

function checkExampleSchema(schema) {
  assert.ok(schema, 'SchemaReadResponse.schema is set');
  assert.deepEqual(Object.keys(schema.entityDefinitions).sort(), ['organization', 'repository', 'user']);
  for (const name of ['user', 'organization', 'repository']) {
    const got = schema.entityDefinitions[name];
    const want = EXPECTED_EXAMPLE.entityDefinitions[name];
    assert.equal(got.name, want.name);
    assert.deepEqual(got.relations, want.relations, `${name}: relations`);
    assert.deepEqual(got.attributes, want.attributes, `${name}: attributes`);
    assert.deepEqual(got.permissions, want.permissions, `${name}: permissions`);
    assert.deepEqual(got.references, want.references, `${name}: references`);
  }
  assert.deepEqual(schema.ruleDefinitions, {}, 'no rules');
  assert.deepEqual(schema.references, EXPECTED_EXAMPLE.references, 'schema-level references');
}

tcTest('schema: write, read back, list, versions select the validation schema', async (t) => {
  const tenantId = 'node-schema';
  await createTenant(tenantId);
  const beforeSec = Math.floor(Date.now() / 1000);
  const v1 = await writeSchema(tenantId, SCHEMA_EXAMPLE);
  const ts = xidSeconds(v1);
  assert.ok(Math.abs(ts - beforeSec) < 300, `xid ${v1} embeds the current Unix time (${ts} vs ${beforeSec})`);

  await sub(t, 'read head returns the example schema\'s definition', async () => {
    const res = await client.schema.read({ tenantId, metadata: { schemaVersion: '' } });
    checkExampleSchema(res.schema);
  });
  await sub(t, 'read by explicit version', async () => {
    const res = await client.schema.read({ tenantId, metadata: { schemaVersion: v1 } });
    checkExampleSchema(res.schema);
  });

  const SCHEMA_V2 = `entity user {}
entity team {
  relation member @user
  permission view = member
}
`;
  const v2 = await writeSchema(tenantId, SCHEMA_V2);
  assert.notEqual(v2, v1);
  assert.ok(v2 > v1, `later version sorts higher: ${v2} > ${v1}`);

  await sub(t, 'head moves to the new version, old version stays readable', async () => {
    const head = await client.schema.read({ tenantId, metadata: { schemaVersion: '' } });
    assert.deepEqual(Object.keys(head.schema.entityDefinitions).sort(), ['team', 'user']);
    const team = head.schema.entityDefinitions.team;
    assert.deepEqual(team.relations, { member: { name: 'member', relationReferences: [rel('user')] } });
    // A single-term permission compiles to a leaf, not a rewrite.
    assert.deepEqual(team.permissions, { view: { name: 'view', child: leafCUS('member') } });
    const old = await client.schema.read({ tenantId, metadata: { schemaVersion: v1 } });
    checkExampleSchema(old.schema);
  });

  await sub(t, 'list: head and versions newest first', async () => {
    const res = await client.schema.list({ tenantId, pageSize: 10 });
    assert.equal(res.head, v2);
    assert.deepEqual(res.schemas.map((s) => s.version), [v2, v1]);
    for (const s of res.schemas) {
      // Go's default time format: 2006-01-02 15:04:05 -0700 MST
      assert.match(s.createdAt, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4} \S+$/);
    }
    assert.equal(res.continuousToken, '');
  });

  await sub(t, 'list pagination with page_size 1', async () => {
    const pages = await allPages((token) => client.schema.list({ tenantId, pageSize: 1, continuousToken: token }),
      (res) => res.schemas.map((s) => s.version));
    assert.deepEqual(pages, [[v2], [v1]]);
  });

  await sub(t, 'README: list with page_size 0 returns a page of 50 (Permify: empty page + token)', async () => {
    const small = await client.schema.list({ tenantId });
    assert.equal(small.head, v2);
    assert.deepEqual(small.schemas.map((s) => s.version), [v2, v1]);
    assert.equal(small.continuousToken, '');
    const many = 'node-schema-many';
    await createTenant(many);
    const versions = [];
    for (let i = 0; i < 52; i++) versions.push(await writeSchema(many, 'entity user {}\n'));
    versions.reverse(); // newest first
    const first = await client.schema.list({ tenantId: many });
    assert.equal(first.head, versions[0]);
    assert.deepEqual(first.schemas.map((s) => s.version), versions.slice(0, 50));
    assert.notEqual(first.continuousToken, '');
    const second = await client.schema.list({ tenantId: many, continuousToken: first.continuousToken });
    assert.deepEqual(second.schemas.map((s) => s.version), versions.slice(50));
    assert.equal(second.continuousToken, '');
  });

  await sub(t, 'metadata.schema_version selects the schema a write is validated against', async () => {
    await write(tenantId, ['repository:r1#owner@user:u1'], [], v1);
    await expectError(client.data.write({ tenantId, metadata: { schemaVersion: '' }, tuples: [tuple('repository:r1#owner@user:u1')] }),
      NOT_FOUND, 'ERROR_CODE_SCHEMA_NOT_FOUND');
    await write(tenantId, ['team:t#member@user:u1'], []);
    await expectError(client.data.write({ tenantId, metadata: { schemaVersion: v1 }, tuples: [tuple('team:t#member@user:u1')] }),
      NOT_FOUND, 'ERROR_CODE_SCHEMA_NOT_FOUND');
    await expectError(client.data.write({ tenantId, metadata: { schemaVersion: 'cv0000000000000000zz' }, tuples: [tuple('team:t#member@user:u1')] }),
      NOT_FOUND, 'ERROR_CODE_SCHEMA_NOT_FOUND');
  });
});

// ---------------------------------------------------------------------------------------------
// data: write and read back

tcTest('data: write tuples and attributes, read them back with filters', async (t) => {
  const tenantId = 'node-data';
  await createTenant(tenantId);
  await writeSchema(tenantId, SCHEMA_DATA);

  const TUPLES = [
    'organization:1#admin@user:alice',
    'organization:1#member@user:bob',
    'organization:1#member@organization:2#admin',
    'repository:r1#parent@organization:1',
    'repository:r1#owner@user:carol',
    'repository:r2#owner@user:alice',
    'project:p1#owner@user:alice',
  ];
  const ATTRS = [
    attr('repository:r1', 'is_public', 'BooleanValue', true),
    attr('repository:r2', 'is_public', 'BooleanValue', false),
    attr('organization:1', 'ip_range', 'StringArrayValue', ['10.0.0.0/8', '192.168.0.0/16']),
    attr('project:p1', 'name', 'StringValue', 'tuplecast'),
    attr('project:p1', 'stars', 'IntegerValue', -42),
    attr('project:p1', 'score', 'DoubleValue', 0.75),
    attr('project:p1', 'flags', 'BooleanArrayValue', [true, false, true]),
    attr('project:p1', 'sizes', 'IntegerArrayValue', [1, 2, 2147483647]),
    attr('project:p1', 'weights', 'DoubleArrayValue', [1.5, -2.25]),
  ];
  const token = await write(tenantId, TUPLES, ATTRS);

  await sub(t, 'empty filter returns every tuple, in write order', async () => {
    assert.deepEqual(await tuplesAt(tenantId, {}, token), TUPLES);
  });
  await sub(t, 'entity type + ids', async () => {
    assert.deepEqual(await tuplesAt(tenantId, { entity: { type: 'organization', ids: ['1'] } }, token), TUPLES.slice(0, 3));
  });
  await sub(t, 'relation + subject type + subject relation', async () => {
    assert.deepEqual(await tuplesAt(tenantId, {
      entity: { type: 'organization', ids: [] }, relation: 'member', subject: { type: 'organization', ids: [], relation: 'admin' },
    }, token), ['organization:1#member@organization:2#admin']);
  });
  await sub(t, 'subject type + ids', async () => {
    assert.deepEqual(await tuplesAt(tenantId, { subject: { type: 'user', ids: ['alice'] } }, token),
      ['organization:1#admin@user:alice', 'repository:r2#owner@user:alice', 'project:p1#owner@user:alice']);
  });
  await sub(t, 'several entity ids + relation', async () => {
    assert.deepEqual(await tuplesAt(tenantId, { entity: { type: 'repository', ids: ['r1', 'r2'] }, relation: 'owner' }, token),
      ['repository:r1#owner@user:carol', 'repository:r2#owner@user:alice']);
  });
  await sub(t, 'filters are not validated against the schema; no match → empty', async () => {
    assert.deepEqual(await tuplesAt(tenantId, { entity: { type: 'nothing', ids: [] } }, token), []);
  });
  await sub(t, 'head read (no snap token) sees the write', async () => {
    assert.deepEqual(await tuplesAt(tenantId, {}, ''), TUPLES);
  });

  await sub(t, 'attributes by entity type', async () => {
    assert.deepEqual(await attrsAt(tenantId, { entity: { type: 'repository', ids: [] }, attributes: [] }, token), [
      view('repository:r1$is_public', 'BooleanValue', true),
      view('repository:r2$is_public', 'BooleanValue', false),
    ]);
  });
  await sub(t, 'attributes by entity id and attribute name', async () => {
    assert.deepEqual(await attrsAt(tenantId, { entity: { type: 'organization', ids: ['1'] }, attributes: ['ip_range'] }, token), [
      view('organization:1$ip_range', 'StringArrayValue', ['10.0.0.0/8', '192.168.0.0/16']),
    ]);
  });
  await sub(t, 'all eight value types round-trip', async () => {
    assert.deepEqual(await attrsAt(tenantId, { entity: { type: 'project', ids: ['p1'] }, attributes: [] }, token), [
      view('project:p1$name', 'StringValue', 'tuplecast'),
      view('project:p1$stars', 'IntegerValue', -42),
      view('project:p1$score', 'DoubleValue', 0.75),
      view('project:p1$flags', 'BooleanArrayValue', [true, false, true]),
      view('project:p1$sizes', 'IntegerArrayValue', [1, 2, 2147483647]),
      view('project:p1$weights', 'DoubleArrayValue', [1.5, -2.25]),
    ]);
  });
  await sub(t, 'attribute name list', async () => {
    assert.deepEqual((await attrsAt(tenantId, { entity: { type: 'project', ids: [] }, attributes: ['score', 'stars'] }, token)).map((a) => a.key),
      ['project:p1$stars', 'project:p1$score']);
  });
  await sub(t, 'empty attribute filter returns all attributes in write order', async () => {
    assert.deepEqual((await attrsAt(tenantId, {}, token)).map((a) => a.key),
      ATTRS.map((a) => `${a.entity.type}:${a.entity.id}$${a.attribute}`));
  });

  await sub(t, 'duplicate active tuple is a silent no-op; duplicate attribute keeps the first value', async () => {
    const t2 = await write(tenantId, ['organization:1#admin@user:alice', 'organization:1#admin@user:alice'], [
      attr('project:p1', 'stars', 'IntegerValue', 1),
      attr('project:p1', 'stars', 'IntegerValue', 2),
    ]);
    assert.notEqual(t2, token);
    assert.deepEqual(await tuplesAt(tenantId, {}, t2), TUPLES);
    assert.deepEqual(await attrsAt(tenantId, { entity: { type: 'project', ids: ['p1'] }, attributes: ['stars'] }, t2),
      [view('project:p1$stars', 'IntegerValue', 1)]);
    assert.deepEqual(await attrsAt(tenantId, { entity: { type: 'project', ids: ['p1'] }, attributes: ['stars'] }, token),
      [view('project:p1$stars', 'IntegerValue', -42)], 'the old token still sees the old value');
  });
});

// ---------------------------------------------------------------------------------------------
// pagination

tcTest('data: pagination with page_size and continuous_token covers every row once', async (t) => {
  const tenantId = 'node-pages';
  await createTenant(tenantId);
  await writeSchema(tenantId, SCHEMA_EXAMPLE);
  const members = [0, 1, 2, 3, 4, 5, 6].map((i) => `organization:pg#member@user:u${i}`);
  // interleave rows the filter must skip
  const rows = [];
  members.forEach((m, i) => { rows.push(m); rows.push(`organization:other#member@user:x${i}`); });
  const attrs = [0, 1, 2, 3, 4].map((i) => attr(`repository:p${i}`, 'is_public', 'BooleanValue', i % 2 === 0));
  const token = await write(tenantId, rows, attrs);
  const filter = { entity: { type: 'organization', ids: ['pg'] } };

  for (const [size, shape] of [[2, [2, 2, 2, 1]], [3, [3, 3, 1]], [6, [6, 1]], [7, [7]], [8, [7]], [1, [1, 1, 1, 1, 1, 1, 1]]]) {
    await sub(t, `relationships, page_size ${size}`, async () => {
      const pages = await allPages((ct) => readTuples(tenantId, filter, token, size, ct), (res) => res.tuples.map(tupleStr));
      assert.deepEqual(pages.map((p) => p.length), shape);
      assert.deepEqual(pages.flat(), members);
    });
  }

  await sub(t, 'attributes, page_size 2', async () => {
    const pages = await allPages((ct) => readAttrs(tenantId, { entity: { type: 'repository', ids: [] } }, token, 2, ct),
      (res) => res.attributes.map((a) => attrView(a).key));
    assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
    assert.deepEqual(pages.flat(), [0, 1, 2, 3, 4].map((i) => `repository:p${i}$is_public`));
  });

  await sub(t, 'page_size 0 means 50 for reads', async () => {
    const big = [];
    for (let i = 0; i < 60; i++) big.push(`organization:big#member@user:d${i}`);
    const t2 = await write(tenantId, big);
    const f = { entity: { type: 'organization', ids: ['big'] } };
    const first = await readTuples(tenantId, f, t2, 0, '');
    assert.equal(first.tuples.length, 50);
    assert.notEqual(first.continuousToken, '');
    const second = await readTuples(tenantId, f, t2, 0, first.continuousToken);
    assert.equal(second.tuples.length, 10);
    assert.equal(second.continuousToken, '');
    assert.deepEqual([...first.tuples, ...second.tuples].map(tupleStr), big);
  });

  await sub(t, 'malformed continuous token → INVALID_ARGUMENT ERROR_CODE_INVALID_CONTINUOUS_TOKEN', async () => {
    await expectError(readTuples(tenantId, filter, token, 2, '%%% not base64 %%%'),
      INVALID_ARGUMENT, 'ERROR_CODE_INVALID_CONTINUOUS_TOKEN');
    await expectError(readAttrs(tenantId, { entity: { type: 'repository', ids: [] } }, token, 2, '%%% not base64 %%%'),
      INVALID_ARGUMENT, 'ERROR_CODE_INVALID_CONTINUOUS_TOKEN');
  });

  await sub(t, 'README: malformed snap token on reads → INVALID_ARGUMENT saying why (Permify: INTERNAL)', async () => {
    await expectError(readTuples(tenantId, filter, '%%% not a token %%%'), INVALID_ARGUMENT, /snap token/i);
    await expectError(readAttrs(tenantId, {}, '%%% not a token %%%'), INVALID_ARGUMENT, /snap token/i);
  });
});

// ---------------------------------------------------------------------------------------------
// writeRelationships / deleteRelationships / data.delete and reads at old tokens

tcTest('data: writeRelationships, deleteRelationships, data.delete; old tokens keep the old view', async (t) => {
  const tenantId = 'node-mvcc';
  await createTenant(tenantId);
  await writeSchema(tenantId, SCHEMA_EXAMPLE);
  const org = { entity: { type: 'organization', ids: ['1'] } };
  const repo = { entity: { type: 'repository', ids: [] } };
  const repoAttrs = { entity: { type: 'repository', ids: [] }, attributes: [] };

  const w0 = await write(tenantId, [
    'organization:1#admin@user:alice',
    'organization:1#member@user:bob',
    'repository:r1#parent@organization:1',
    'repository:r1#owner@user:carol',
  ], [
    attr('repository:r1', 'is_public', 'BooleanValue', true),
    attr('repository:r2', 'is_public', 'BooleanValue', false),
  ]);

  const wr = await client.data.writeRelationships({
    tenantId, metadata: { schemaVersion: '' }, tuples: [tuple('organization:1#member@user:dave')],
  });
  const w1 = wr.snapToken;
  assert.notEqual(w1, '');

  const dr = await client.data.deleteRelationships({
    tenantId,
    filter: { entity: { type: 'organization', ids: ['1'] }, relation: 'member', subject: { type: 'user', ids: ['bob'], relation: '' } },
  });
  const w2 = dr.snapToken;
  assert.notEqual(w2, '');

  const dd = await client.data.delete({
    tenantId,
    tupleFilter: { entity: { type: 'repository', ids: ['r1'] } },
    attributeFilter: { entity: { type: 'repository', ids: ['r1'] }, attributes: ['is_public'] },
  });
  const w3 = dd.snapToken;
  assert.notEqual(w3, '');

  const w4 = await write(tenantId, [], [attr('repository:r2', 'is_public', 'BooleanValue', true)]);
  const w5 = await write(tenantId, ['organization:1#member@user:bob']);

  await sub(t, 'every write returns a distinct token', async () => {
    assert.equal(new Set([w0, w1, w2, w3, w4, w5]).size, 6, JSON.stringify([w0, w1, w2, w3, w4, w5]));
  });

  await sub(t, 'writeRelationships: visible at its token, not at the previous one', async () => {
    assert.deepEqual(await tuplesAt(tenantId, org, w0), ['organization:1#admin@user:alice', 'organization:1#member@user:bob']);
    assert.deepEqual(await tuplesAt(tenantId, org, w1),
      ['organization:1#admin@user:alice', 'organization:1#member@user:bob', 'organization:1#member@user:dave']);
  });

  await sub(t, 'deleteRelationships: gone at its token, still there at the old one', async () => {
    assert.deepEqual(await tuplesAt(tenantId, org, w1),
      ['organization:1#admin@user:alice', 'organization:1#member@user:bob', 'organization:1#member@user:dave']);
    assert.deepEqual(await tuplesAt(tenantId, org, w2), ['organization:1#admin@user:alice', 'organization:1#member@user:dave']);
  });

  await sub(t, 'data.delete with filters: tuples and attributes gone at its token only', async () => {
    assert.deepEqual(await tuplesAt(tenantId, repo, w2), ['repository:r1#parent@organization:1', 'repository:r1#owner@user:carol']);
    assert.deepEqual(await attrsAt(tenantId, repoAttrs, w2), [
      view('repository:r1$is_public', 'BooleanValue', true),
      view('repository:r2$is_public', 'BooleanValue', false),
    ]);
    assert.deepEqual(await tuplesAt(tenantId, repo, w3), []);
    assert.deepEqual(await attrsAt(tenantId, repoAttrs, w3), [view('repository:r2$is_public', 'BooleanValue', false)]);
    // the organization tuples were not touched by the repository filter
    assert.deepEqual(await tuplesAt(tenantId, org, w3), ['organization:1#admin@user:alice', 'organization:1#member@user:dave']);
  });

  await sub(t, 'attribute upsert: old token sees the old value, new token the new one', async () => {
    assert.deepEqual(await attrsAt(tenantId, repoAttrs, w3), [view('repository:r2$is_public', 'BooleanValue', false)]);
    assert.deepEqual(await attrsAt(tenantId, repoAttrs, w4), [view('repository:r2$is_public', 'BooleanValue', true)]);
  });

  await sub(t, 're-writing a deleted tuple makes it visible again only from the new token', async () => {
    assert.deepEqual(await tuplesAt(tenantId, org, w4), ['organization:1#admin@user:alice', 'organization:1#member@user:dave']);
    // rows come back ordered by row id, so the re-written tuple is last
    assert.deepEqual(await tuplesAt(tenantId, org, w5),
      ['organization:1#admin@user:alice', 'organization:1#member@user:dave', 'organization:1#member@user:bob']);
  });

  await sub(t, 'head reads (no token) see the latest state', async () => {
    assert.deepEqual(await tuplesAt(tenantId, {}, ''), [
      'organization:1#admin@user:alice', 'organization:1#member@user:dave', 'organization:1#member@user:bob',
    ]);
    assert.deepEqual(await attrsAt(tenantId, {}, ''), [view('repository:r2$is_public', 'BooleanValue', true)]);
  });

  await sub(t, 'empty filters: OK with an empty snap token and nothing deleted', async () => {
    const before = (await tuplesAt(tenantId, {}, '')).sort();
    const a = await client.data.delete({ tenantId, tupleFilter: {}, attributeFilter: {} });
    assert.equal(a.snapToken, '');
    const b = await client.data.deleteRelationships({ tenantId, filter: {} });
    assert.equal(b.snapToken, '');
    const c = await client.data.deleteRelationships({ tenantId });
    assert.equal(c.snapToken, '');
    assert.deepEqual((await tuplesAt(tenantId, {}, '')).sort(), before);
    assert.deepEqual(await attrsAt(tenantId, {}, ''), [view('repository:r2$is_public', 'BooleanValue', true)]);
  });
});

// ---------------------------------------------------------------------------------------------
// error contract

tcTest('errors: exact gRPC code and message', async (t) => {
  const tenantId = 'node-errors';
  await createTenant(tenantId);
  await writeSchema(tenantId, SCHEMA_EXAMPLE);
  const w = (tuples, attributes = []) => client.data.write({
    tenantId, metadata: { schemaVersion: '' }, tuples: tuples.map(tuple), attributes,
  });

  await sub(t, 'README: unknown tenant → NOT_FOUND ERROR_CODE_TENANT_NOT_FOUND on every data/schema call', async () => {
    await expectTenantNotFound('node-no-such-tenant');
  });
  await sub(t, 'tenant without a schema → NOT_FOUND ERROR_CODE_SCHEMA_NOT_FOUND', async () => {
    await createTenant('node-no-schema');
    await expectError(client.data.write({
      tenantId: 'node-no-schema', metadata: { schemaVersion: '' }, tuples: [tuple('organization:1#admin@user:a')],
    }), NOT_FOUND, 'ERROR_CODE_SCHEMA_NOT_FOUND');
    // even when the request carries no data
    await expectError(client.data.write({ tenantId: 'node-no-schema', metadata: { schemaVersion: '' } }),
      NOT_FOUND, 'ERROR_CODE_SCHEMA_NOT_FOUND');
    await expectError(client.data.writeRelationships({
      tenantId: 'node-no-schema', metadata: { schemaVersion: '' }, tuples: [tuple('organization:1#admin@user:a')],
    }), NOT_FOUND, 'ERROR_CODE_SCHEMA_NOT_FOUND');
  });
  await sub(t, 'relation not in schema → NOT_FOUND ERROR_CODE_RELATION_DEFINITION_NOT_FOUND', async () => {
    await expectError(w(['organization:1#owner@user:a']), NOT_FOUND, 'ERROR_CODE_RELATION_DEFINITION_NOT_FOUND');
    // permissions are not relations
    await expectError(w(['organization:1#view@user:a']), NOT_FOUND, 'ERROR_CODE_RELATION_DEFINITION_NOT_FOUND');
  });
  await sub(t, 'entity type not in schema → NOT_FOUND ERROR_CODE_SCHEMA_NOT_FOUND', async () => {
    await expectError(w(['team:1#member@user:a']), NOT_FOUND, 'ERROR_CODE_SCHEMA_NOT_FOUND');
    await expectError(w([], [attr('team:1', 'is_public', 'BooleanValue', true)]), NOT_FOUND, 'ERROR_CODE_SCHEMA_NOT_FOUND');
  });
  await sub(t, 'subject type not allowed → NOT_FOUND ERROR_CODE_SUBJECT_TYPE_NOT_FOUND', async () => {
    await expectError(w(['organization:1#admin@organization:2']), NOT_FOUND, 'ERROR_CODE_SUBJECT_TYPE_NOT_FOUND');
    // @organization#admin admits only organization:x#admin, never bare organization:x
    await expectError(w(['organization:1#member@organization:2']), NOT_FOUND, 'ERROR_CODE_SUBJECT_TYPE_NOT_FOUND');
    await expectError(w(['organization:1#member@user:a#admin']), NOT_FOUND, 'ERROR_CODE_SUBJECT_TYPE_NOT_FOUND');
  });
  await sub(t, 'entity equals subject → INVALID_ARGUMENT ERROR_CODE_ENTITY_AND_SUBJECT_CANNOT_BE_EQUAL', async () => {
    await expectError(w(['organization:1#admin@organization:1#admin']), INVALID_ARGUMENT, 'ERROR_CODE_ENTITY_AND_SUBJECT_CANNOT_BE_EQUAL');
  });
  await sub(t, 'undefined attribute → NOT_FOUND ERROR_CODE_ATTRIBUTE_DEFINITION_NOT_FOUND', async () => {
    await expectError(w([], [attr('repository:r1', 'colour', 'StringValue', 'red')]), NOT_FOUND, 'ERROR_CODE_ATTRIBUTE_DEFINITION_NOT_FOUND');
  });
  await sub(t, 'wrong Any type → NOT_FOUND ERROR_CODE_ATTRIBUTE_TYPE_MISMATCH', async () => {
    await expectError(w([], [attr('repository:r1', 'is_public', 'StringValue', 'true')]), NOT_FOUND, 'ERROR_CODE_ATTRIBUTE_TYPE_MISMATCH');
    await expectError(w([], [attr('organization:1', 'ip_range', 'StringValue', '10.0.0.0/8')]), NOT_FOUND, 'ERROR_CODE_ATTRIBUTE_TYPE_MISMATCH');
    await expectError(w([], [attr('repository:r1', 'is_public', 'BooleanArrayValue', [true])]), NOT_FOUND, 'ERROR_CODE_ATTRIBUTE_TYPE_MISMATCH');
  });
  await sub(t, 'invalid entity type (digits) → INVALID_ARGUMENT with the PGV message', async () => {
    await expectError(w(['org1:1#admin@user:a']), INVALID_ARGUMENT,
      'invalid DataWriteRequest.Tuples[0]: embedded message failed validation | caused by: invalid Tuple.Entity: ' +
      'embedded message failed validation | caused by: invalid Entity.Type: value does not match regex pattern "^[a-zA-Z_]{1,64}$"');
    await expectError(w(['organization:1#admin@user:a', 'organization:1#admin@user:a b']), INVALID_ARGUMENT,
      String.raw`invalid DataWriteRequest.Tuples[1]: embedded message failed validation | caused by: invalid Tuple.Subject: ` +
      String.raw`embedded message failed validation | caused by: invalid Subject.Id: value does not match regex pattern "^([a-zA-Z0-9_\\-@\\.:+]{1,128}|\\*)$"`);
  });
  await sub(t, 'invalid tenant id → INVALID_ARGUMENT with the PGV message', async () => {
    await expectError(client.data.write({ tenantId: '', metadata: { schemaVersion: '' }, tuples: [] }), INVALID_ARGUMENT,
      String.raw`invalid DataWriteRequest.TenantId: value does not match regex pattern "^([a-zA-Z0-9_\\-@\\.:+]{1,128}|\\*)$"`);
  });
  await sub(t, 'missing required messages / empty tuple list → INVALID_ARGUMENT', async () => {
    await expectError(client.data.write({ tenantId, tuples: [tuple('organization:1#admin@user:a')] }), INVALID_ARGUMENT,
      'invalid DataWriteRequest.Metadata: value is required');
    await expectError(client.data.writeRelationships({ tenantId, metadata: { schemaVersion: '' }, tuples: [] }), INVALID_ARGUMENT,
      'invalid RelationshipWriteRequest.Tuples: value must contain at least 1 item(s)');
    await expectError(client.data.readRelationships({ tenantId, metadata: { snapToken: '' } }), INVALID_ARGUMENT,
      'invalid RelationshipReadRequest.Filter: value is required');
  });
  await sub(t, 'a failing write stores nothing (the whole request is rejected)', async () => {
    await expectError(w(['organization:9#admin@user:a', 'organization:9#owner@user:a']), NOT_FOUND, 'ERROR_CODE_RELATION_DEFINITION_NOT_FOUND');
    assert.deepEqual(await tuplesAt(tenantId, { entity: { type: 'organization', ids: ['9'] } }), []);
  });
  await sub(t, 'bad schema → INTERNAL with an L:C: message', async () => {
    await expectError(client.schema.write({ tenantId, schema: 'entity user {}\nentity doc {\n  permission view = owner\n}\n' }),
      INTERNAL, /^3:\d+: ?undefined relation reference$/);
    await expectError(client.schema.write({ tenantId, schema: 'entity user {}\nentity doc {\n  relation\n}\n' }),
      INTERNAL, /^\d+:\d+: ?expected next token to be IDENT, got NEWLINE instead$/);
    await expectError(client.schema.write({ tenantId, schema: 'entity user {}\nentity doc {\n  relation owner @team\n}\n' }),
      INTERNAL, /^\d+:\d+: ?relation reference not found in entity references$/);
    await expectError(client.schema.write({ tenantId, schema: 'entity user {}\nentity user {}\n' }),
      INTERNAL, /^2:\d+: ?duplication found for /);
    // the failed writes did not create versions
    const list = await client.schema.list({ tenantId, pageSize: 10 });
    assert.equal(list.schemas.length, 1);
  });
});

// ---------------------------------------------------------------------------------------------
// tenant delete

tcTest('tenancy: delete a tenant, then calls for it → NOT_FOUND', async (t) => {
  const tenantId = 'node-doomed';
  await createTenant(tenantId);
  await writeSchema(tenantId, SCHEMA_EXAMPLE);
  const tok = await write(tenantId, ['organization:1#admin@user:a'], [attr('repository:r1', 'is_public', 'BooleanValue', true)]);
  assert.deepEqual(await tuplesAt(tenantId, {}, tok), ['organization:1#admin@user:a']);

  const res = await client.tenancy.delete({ id: tenantId });
  assert.equal(res.tenantId, tenantId);

  await sub(t, 'no longer listed', async () => {
    const ids = (await client.tenancy.list({ pageSize: 1000 })).tenants.map((x) => x.id);
    assert.ok(!ids.includes(tenantId), JSON.stringify(ids));
  });
  await sub(t, 'README: data/schema calls for it → NOT_FOUND ERROR_CODE_TENANT_NOT_FOUND', async () => {
    await expectTenantNotFound(tenantId, tok);
  });
  await sub(t, 'second delete → NOT_FOUND ERROR_CODE_NOT_FOUND', async () => {
    await expectError(client.tenancy.delete({ id: tenantId }), NOT_FOUND, 'ERROR_CODE_NOT_FOUND');
  });
  await sub(t, 'the id can be created again: no schema, no data (hard delete)', async () => {
    await createTenant(tenantId);
    assert.deepEqual(await tuplesAt(tenantId, {}, ''), []);
    assert.deepEqual(await attrsAt(tenantId, {}, ''), []);
    await expectError(client.data.write({ tenantId, metadata: { schemaVersion: '' }, tuples: [tuple('organization:1#admin@user:b')] }),
      NOT_FOUND, 'ERROR_CODE_SCHEMA_NOT_FOUND');
  });
});

// ---------------------------------------------------------------------------------------------
// shutdown (must stay last)

tcTest('watch: the Permify client receives every later write once, in order, and resumes', async () => {
  const tenantId = 'node-watch';
  await createTenant(tenantId);
  await writeSchema(tenantId, SCHEMA_EXAMPLE);
  const start = await write(tenantId, ['organization:w#admin@user:u0']);
  const tokens = [];
  for (let i = 1; i <= 5; i++) tokens.push(await write(tenantId, [`organization:w#member@user:u${i}`]));
  const received = [];
  const ac = new AbortController();
  try {
    for await (const res of client.watch.watch({ tenantId, snapToken: start }, { signal: ac.signal })) {
      const changes = res.changes;
      assert.equal(changes.dataChanges.length, 1, 'one change per transaction');
      const dc = changes.dataChanges[0];
      assert.equal(dc.operation, 1, 'OPERATION_CREATE');
      assert.equal(dc.type.$case, 'tuple');
      assert.equal(tupleStr(dc.type.tuple), `organization:w#member@user:u${received.length + 1}`);
      received.push(changes.snapToken);
      if (received.length === tokens.length) break;
    }
  } finally {
    ac.abort();
  }
  // A message's token is the position after its transaction: on SQLite the
  // write's own token; on Postgres a snapshot, so only distinct there.
  if (srv.engine === 'postgres') assert.equal(new Set(received).size, received.length);
  else assert.deepEqual(received, tokens, 'each message carries its transaction\'s snap token');
  // Resume from the third write's token, and from the third message's: exactly the later ones.
  for (const from of [tokens[2], received[2]]) {
    const later = [];
    for await (const res of client.watch.watch({ tenantId, snapToken: from })) {
      later.push(tupleStr(res.changes.dataChanges[0].type.tuple));
      if (later.length === 2) break;
    }
    assert.deepEqual(later, ['organization:w#member@user:u4', 'organization:w#member@user:u5']);
  }
});

tcTest('server: SIGTERM → graceful shutdown with exit code 0', async () => {
  const { code, signal } = await srv.stop();
  assert.equal(signal, null, `tuplecast was killed by ${signal}\n--- server stderr ---\n${srv.stderrTail()}`);
  assert.equal(code, OK, `tuplecast exited with code ${code}\n--- server stderr ---\n${srv.stderrTail()}`);
});
