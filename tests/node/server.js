'use strict';
// Starts build/tuplecast on free ports with a fresh SQLite file and stops it again.
//
//   const srv = await startServer();   // resolves once the gRPC port accepts TCP connections
//   startServer({ args: [...] })        // extra `serve` flags
//   srv.endpoint                        // "127.0.0.1:<grpc port>"
//   srv.stderr()                        // everything the server wrote to stderr so far
//   const {code, signal} = await srv.stop();  // SIGTERM, waits for exit (deadline)
//
// Binary: $TUPLECAST_BIN (relative paths resolve against the current directory), default
// ../../build/tuplecast relative to this directory.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const READY_DEADLINE_MS = Number(process.env.TUPLECAST_READY_TIMEOUT_MS || 10000);
const STOP_DEADLINE_MS = Number(process.env.TUPLECAST_STOP_TIMEOUT_MS || 10000);
const MAX_START_ATTEMPTS = 5;

function binaryPath() {
  const env = process.env.TUPLECAST_BIN;
  if (env && env.length > 0) return path.resolve(process.cwd(), env);
  return path.resolve(__dirname, '..', '..', 'build', 'tuplecast');
}

// Ask the kernel for a free port: bind port 0, read the port, close the socket.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const { port } = srv.address();
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

async function twoFreePorts() {
  for (;;) {
    const a = await freePort();
    const b = await freePort();
    if (a !== b) return [a, b];
  }
}

function tryConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    const done = (ok) => {
      sock.removeAllListeners();
      sock.destroy();
      resolve(ok);
    };
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Resolves when the port accepts a TCP connection; rejects when the process exits first or the
// deadline passes. Polls with a short back-off between connection attempts.
async function waitForPort(port, proc, exited, deadlineMs) {
  const deadline = Date.now() + deadlineMs;
  let pause = 10;
  for (;;) {
    if (exited.value) return { ok: false, reason: 'exited' };
    if (await tryConnect(port)) {
      if (exited.value) return { ok: false, reason: 'exited' };
      return { ok: true };
    }
    if (Date.now() >= deadline) return { ok: false, reason: 'timeout' };
    await Promise.race([delay(pause), exited.promise]);
    pause = Math.min(pause * 2, 100);
  }
}

function looksLikeAddrInUse(text) {
  return /EADDRINUSE|address already in use|in use/i.test(text);
}

function tail(text, lines = 200) {
  const all = text.split('\n');
  return all.length <= lines ? text : all.slice(-lines).join('\n');
}

async function startServer(options = {}) {
  const bin = options.bin || binaryPath();
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch (e) {
    throw new Error(`tuplecast binary not found or not executable: ${bin} ` +
      '(build it with `cmake -S . -B build -G Ninja && ninja -C build`, or set TUPLECAST_BIN)');
  }
  // Under `tc-pgtmp -- ...` (ctest's node_permify_client_postgres) the server
  // runs on that throwaway PostgreSQL cluster instead of a SQLite file.
  const pgUri = process.env.TC_PG_URI;
  const engine = options.engine || (pgUri ? 'postgres' : 'sqlite');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tuplecast-node-'));
  let lastFailure = '';
  for (let attempt = 1; attempt <= MAX_START_ATTEMPTS; attempt++) {
    const [grpcPort, httpPort] = await twoFreePorts();
    // A fresh database file per attempt, so a failed attempt leaves nothing behind for the next.
    const dbFile = path.join(dir, `tuplecast-${attempt}.db`);
    const args = ['serve', '--grpc-port', String(grpcPort), '--http-port', String(httpPort),
      '--database-engine', engine];
    if (engine !== 'memory') args.push('--database-uri', engine === 'postgres' ? pgUri : dbFile);
    if (options.args) args.push(...options.args); // more flags, e.g. TLS (tls.test.js)

    let stderrText = '';
    let stdoutText = '';
    const proc = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stderr.setEncoding('utf8');
    proc.stdout.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => { stderrText += chunk; });
    proc.stdout.on('data', (chunk) => { stdoutText += chunk; });

    const exited = { value: null };
    exited.promise = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        exited.value = { code, signal };
        resolve(exited.value);
      });
      proc.once('error', (err) => {
        stderrText += `\n[spawn error] ${err.message}\n`;
        exited.value = { code: null, signal: null, error: err };
        resolve(exited.value);
      });
    });

    const ready = await waitForPort(grpcPort, proc, exited, READY_DEADLINE_MS);
    if (ready.ok) {
      const server = {
        bin,
        args,
        dir,
        engine,
        dbFile,
        grpcPort,
        httpPort,
        endpoint: `127.0.0.1:${grpcPort}`,
        pid: proc.pid,
        stderr: () => stderrText,
        stdout: () => stdoutText,
        stderrTail: (n) => tail(stderrText, n),
        exited: () => exited.value,
        // SIGTERM, then wait for the exit with a deadline. Resolves to {code, signal}; on
        // timeout the process is killed with SIGKILL and the promise rejects.
        async stop() {
          if (exited.value) return exited.value;
          proc.kill('SIGTERM');
          let timer;
          const timeout = new Promise((resolve) => {
            timer = setTimeout(() => resolve(null), STOP_DEADLINE_MS);
          });
          const result = await Promise.race([exited.promise, timeout]);
          clearTimeout(timer);
          if (result === null) {
            proc.kill('SIGKILL');
            await exited.promise;
            throw new Error(`tuplecast did not exit within ${STOP_DEADLINE_MS} ms of SIGTERM ` +
              `(killed with SIGKILL)\n--- server stderr ---\n${tail(stderrText)}`);
          }
          return result;
        },
        // Best-effort cleanup for after() hooks: make sure nothing is left running.
        async kill() {
          if (!exited.value) {
            proc.kill('SIGKILL');
            await exited.promise;
          }
        },
        cleanup() {
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
      return server;
    }

    if (ready.reason === 'timeout') {
      proc.kill('SIGKILL');
      await exited.promise;
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`tuplecast did not accept connections on port ${grpcPort} within ` +
        `${READY_DEADLINE_MS} ms\ncommand: ${bin} ${args.join(' ')}\n` +
        `--- server stderr ---\n${tail(stderrText)}`);
    }

    // The process exited before it was ready.
    await exited.promise;
    const ex = exited.value;
    lastFailure = `tuplecast exited before listening (code ${ex.code}, signal ${ex.signal})\n` +
      `command: ${bin} ${args.join(' ')}\n--- server stderr ---\n${tail(stderrText)}`;
    if (!looksLikeAddrInUse(stderrText)) break;
    // Port was taken between probing and binding: try again with new ports.
  }
  fs.rmSync(dir, { recursive: true, force: true });
  throw new Error(lastFailure);
}

module.exports = { startServer, binaryPath, freePort };
