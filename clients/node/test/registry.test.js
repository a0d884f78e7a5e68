// @grpc/grpc-js against the real arbiterd and PostgreSQL: the register →
// get → list → unregister flow of example.js, in a tenant created through
// Admin.CreateTenant, and the errors a client sees.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const path = require('path');
const { execFileSync } = require('child_process');
const grpc = require('@grpc/grpc-js');

const { ARBITERD, DATABASE_URL, startServer } = require('../harness.js');
const { connect, call, tenantMetadata, registerGetListUnregister } = require('../example.js');

let skip = false;
if (!ARBITERD) skip = 'ARBITERD is not set';
else if (!DATABASE_URL) skip = 'ARBITER_TEST_DATABASE_URL is not set';

test('AgentRegistry flow from Node', { skip, timeout: 60000 }, async (t) => {
  const server = await startServer();
  const clients = connect(server.socket);
  t.after(async () => {
    clients.close();
    assert.equal(await server.stop(), 0, 'arbiterd exits 0 on SIGTERM');
  });
  const tenant = 'node-' + crypto.randomBytes(4).toString('hex');
  const other = tenant + '-b';

  await t.test('Admin.CreateTenant', async () => {
    for (const id of [tenant, other]) {
      const created = await call(clients.admin, 'CreateTenant', { id, name: 'Node ' + id });
      assert.equal(created.id, id);
      assert.ok(created.created_at, 'created_at is set');
    }
  });

  await t.test('register → get → list → unregister', async () => {
    const name = 'node-agent-1';
    const res = await registerGetListUnregister(clients, tenant, name);
    assert.match(res.agent.id, /^[0-9a-f-]{36}$/);
    assert.equal(res.agent.name, name);
    assert.deepEqual(res.agent.capabilities.languages, ['c', 'javascript']);
    assert.equal(res.agent.load.capacity, 10, 'capacity defaults to 10');
    assert.equal(res.got.id, res.agent.id);
    assert.equal(res.got.model_family, 'claude');
    assert.deepEqual(res.list.agents.map((a) => a.id), [res.agent.id]);
    assert.equal(res.removed.removed, true);
  });

  await t.test('example.js runs as a user would run it', () => {
    const out = execFileSync(process.execPath,
      [path.join(__dirname, '..', 'example.js'), server.socket, tenant],
      { encoding: 'utf8', timeout: 30000 });
    const lines = out.trim().split('\n');
    assert.equal(lines[0], 'health: SERVING');
    assert.match(lines[1], /^registered: [0-9a-f-]{36} node-example-\d+$/);
    assert.match(lines[2], /capabilities c,javascript$/);
    assert.equal(lines[4], 'unregistered: true');
  });

  await t.test('after unregister GetAgent is NOT_FOUND', async () => {
    const md = tenantMetadata(tenant);
    const agent = await call(clients.registry, 'RegisterAgent', { agent: { name: 'gone' } }, md);
    await call(clients.registry, 'UnregisterAgent', { id: agent.id }, md);
    await assert.rejects(call(clients.registry, 'GetAgent', { id: agent.id }, md),
      (err) => err.code === grpc.status.NOT_FOUND);
  });

  await t.test('another tenant cannot see the agent', async () => {
    const md = tenantMetadata(tenant);
    const agent = await call(clients.registry, 'RegisterAgent', { agent: { name: 'mine' } }, md);
    await assert.rejects(
      call(clients.registry, 'GetAgent', { id: agent.id }, tenantMetadata(other)),
      (err) => err.code === grpc.status.NOT_FOUND);
    const list = await call(clients.registry, 'ListAgents', {}, tenantMetadata(other));
    assert.equal(list.agents.length, 0);
    await call(clients.registry, 'UnregisterAgent', { id: agent.id }, md);
  });

  await t.test('a duplicate name is ALREADY_EXISTS', async () => {
    const md = tenantMetadata(tenant);
    const agent = await call(clients.registry, 'RegisterAgent', { agent: { name: 'dup' } }, md);
    await assert.rejects(call(clients.registry, 'RegisterAgent', { agent: { name: 'dup' } }, md),
      (err) => err.code === grpc.status.ALREADY_EXISTS);
    await call(clients.registry, 'UnregisterAgent', { id: agent.id }, md);
  });

  await t.test('a call without x-tenant-id is INVALID_ARGUMENT', async () => {
    await assert.rejects(call(clients.registry, 'ListAgents', {}),
      (err) => err.code === grpc.status.INVALID_ARGUMENT);
  });
});
