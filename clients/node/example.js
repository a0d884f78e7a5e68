#!/usr/bin/env node
// Calling arbiterd from Node with @grpc/grpc-js and @grpc/proto-loader:
// register an agent, read it back, list the tenant's agents, unregister it.
//
//   node example.js [SOCKET] [TENANT]
//
// SOCKET defaults to $ARBITER_SOCKET, then ./arbiterd.sock; TENANT to
// "demo". Every arbiter.v1 call carries the tenant in the x-tenant-id
// metadata; the server scopes it to that tenant's rows.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_DIR = path.join(__dirname, '..', '..', 'proto');

// Loads the service definitions straight from proto/ (no generated code).
// keepCase keeps the proto field names (agent_id, page_size); longs as
// strings because int64 does not fit a JS number.
function loadProtos() {
  const def = protoLoader.loadSync(
    ['arbiter/v1/agent_registry.proto', 'arbiter/v1/admin.proto',
      'grpc_health/v1/health.proto'],
    {
      includeDirs: [PROTO_DIR, '/usr/include'],
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
    });
  return grpc.loadPackageDefinition(def);
}

// One channel per socket, shared by the three service clients.
function connect(socketPath) {
  const pkg = loadProtos();
  const target = 'unix://' + path.resolve(socketPath);
  const creds = grpc.credentials.createInsecure();
  const registry = new pkg.arbiter.v1.AgentRegistry(target, creds);
  const channelOverride = registry.getChannel();
  const opts = { channelOverride };
  return {
    registry,
    admin: new pkg.arbiter.v1.Admin(target, creds, opts),
    health: new pkg.grpc.health.v1.Health(target, creds, opts),
    close: () => registry.close(),
  };
}

function tenantMetadata(tenant) {
  const md = new grpc.Metadata();
  md.set('x-tenant-id', tenant);
  return md;
}

// Promise wrapper for a unary call with a deadline.
function call(client, method, request, metadata, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + timeoutMs);
    client[method](request, metadata || new grpc.Metadata(), { deadline },
      (err, response) => (err ? reject(err) : resolve(response)));
  });
}

// register → get → list → unregister; returns what each step answered.
async function registerGetListUnregister(clients, tenant, name) {
  const md = tenantMetadata(tenant);
  const r = clients.registry;
  const agent = await call(r, 'RegisterAgent', {
    agent: {
      name,
      model_family: 'claude',
      capabilities: { task_types: ['code'], languages: ['c', 'javascript'] },
    },
  }, md);
  const got = await call(r, 'GetAgent', { id: agent.id }, md);
  const list = await call(r, 'ListAgents', { page_size: 100 }, md);
  const removed = await call(r, 'UnregisterAgent', { id: agent.id }, md);
  return { agent, got, list, removed };
}

async function main() {
  const socketPath = process.argv[2] || process.env.ARBITER_SOCKET || './arbiterd.sock';
  const tenant = process.argv[3] || 'demo';
  const clients = connect(socketPath);
  try {
    const health = await call(clients.health, 'Check', { service: '' });
    console.log('health:', health.status);
    const res = await registerGetListUnregister(clients, tenant, 'node-example-' + process.pid);
    console.log('registered:', res.agent.id, res.agent.name);
    console.log('get:', res.got.name, 'capabilities', res.got.capabilities.languages.join(','));
    console.log('list:', res.list.agents.map((a) => a.name).join(', '));
    console.log('unregistered:', res.removed.removed);
  } catch (err) {
    // err.code is the gRPC status number, err.details the server's message.
    console.error(`ERROR: ${grpc.status[err.code]} (${err.code}): ${err.details}`);
    process.exitCode = 1;
  } finally {
    clients.close();
  }
}

module.exports = { loadProtos, connect, call, tenantMetadata, registerGetListUnregister };

if (require.main === module) {
  main();
}
