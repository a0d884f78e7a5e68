// @grpc/grpc-js against the real arbiterd: Health/Check answers SERVING,
// an unknown service is NOT_FOUND, Watch sends the current status first.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const grpc = require('@grpc/grpc-js');

const { ARBITERD, startServer, sleep } = require('../harness.js');
const { connect, call } = require('../example.js');

const skip = ARBITERD ? false : 'ARBITERD is not set';

test('Health over a Unix socket', { skip, timeout: 60000 }, async (t) => {
  const server = await startServer();
  const clients = connect(server.socket);
  t.after(async () => {
    clients.close();
    assert.equal(await server.stop(), 0, 'arbiterd exits 0 on SIGTERM');
  });

  await t.test('Check("") is SERVING', async () => {
    // The pool may still be connecting right after start-up.
    let res;
    for (let i = 0; i < 100; i++) {
      res = await call(clients.health, 'Check', { service: '' });
      if (res.status === 'SERVING') break;
      await sleep(50);
    }
    assert.equal(res.status, 'SERVING');
  });

  await t.test('Check of an unknown service is NOT_FOUND', async () => {
    await assert.rejects(call(clients.health, 'Check', { service: 'no.such.Service' }),
      (err) => err.code === grpc.status.NOT_FOUND);
  });

  await t.test('Watch sends the current status first', async () => {
    const stream = clients.health.Watch({ service: '' });
    const first = await new Promise((resolve, reject) => {
      stream.once('data', resolve);
      stream.once('error', reject);
    });
    assert.equal(first.status, 'SERVING');
    stream.on('error', () => {}); // the cancel below ends it with CANCELLED
    stream.cancel();
  });
});
