// Test helper (kept outside test/ so `node --test` does not run it as a
// test): starts the real arbiterd on a temporary Unix socket.
//
// Environment (set by meson and tests/pg/with-postgres.sh):
//   ARBITERD                   the built server binary (tests skip without it)
//   ARBITER_TEST_DATABASE_URL  conninfo of the app role (tests that need a
//                              database skip without it)
'use strict';

const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');

const ARBITERD = process.env.ARBITERD;
const DATABASE_URL = process.env.ARBITER_TEST_DATABASE_URL;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function canConnect(socketPath) {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

// Starts arbiterd; resolves to { socket, stop() } once the socket accepts
// connections. stop() sends SIGTERM and resolves to the exit code.
async function startServer({ database = true, args = [] } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'arbiterd-node-'));
  const socket = path.join(dir, 'arbiterd.sock');
  const argv = ['serve', '--socket', socket, '--log-level',
    process.env.ARBITER_TEST_LOG_LEVEL || 'warn', ...args];
  if (database && DATABASE_URL) argv.push('--database-url', DATABASE_URL);
  const env = { ...process.env };
  delete env.ARBITER_DATABASE_URL;
  delete env.DATABASE_URL;
  const proc = spawn(ARBITERD, argv, { env, stdio: ['ignore', 'inherit', 'inherit'] });
  let exited = null;
  const exit = new Promise((resolve) => proc.once('exit', (code, sig) => {
    exited = code === null ? 128 + os.constants.signals[sig] : code;
    resolve(exited);
  }));
  const end = Date.now() + 10000;
  while (!(await canConnect(socket))) {
    if (exited !== null) throw new Error(`arbiterd exited with ${exited}`);
    if (Date.now() > end) {
      proc.kill('SIGKILL');
      throw new Error(`arbiterd did not listen on ${socket}`);
    }
    await sleep(20);
  }
  return {
    socket,
    async stop() {
      if (exited === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 15000);
        await exit;
        clearTimeout(timer);
      }
      fs.rmSync(dir, { recursive: true, force: true });
      return exited;
    },
  };
}

module.exports = { ARBITERD, DATABASE_URL, startServer, sleep };
