// Starting and stopping the servers under test. Each runs in its own process group so that
// wrangler's workerd children can be stopped with it, and stdout/stderr go to a log file.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { identity, treePids } from './proc.mjs';

const STARTUP_CAP_MS = 60_000;
const STOP_GRACE_MS = 5_000;

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
export const NODE = join(ROOT, 'node_modules/.bin/node'); // Node 24: wrangler refuses Node < 22.12

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// What each server is: how to launch it, what its output says when it is up, and what extra
// query the load generator must add (the floor is routed by ?room=, our direct path by ?pullRequestId=).
// `skipPolling`: run.mjs skips the HTTP long-polling scenarios there (the floor speaks WebSocket only;
// polling is measured on ours, the gateway where upgraded and polling sessions end up, beside the reference).
// `baseline` is a checkout of another revision of this repository, run as ours is (see baseline.mjs).
// The order is run.mjs's default order.
export async function describeServers({ observability, baseline }) {
  const wranglerEnv = {
    CLOUDFLARE_CF_FETCH_ENABLED: 'false',
    WRANGLER_SEND_METRICS: 'false',
    ...(observability === 'off' && { X_LOCAL_OBSERVABILITY: 'false' }),
  };
  // Same flags as `npm start` ("wrangler dev --ip 127.0.0.1 --port 8787"), on free ports. The
  // inspector port is pinned to a free one so a developer's running `wrangler dev` cannot clash.
  const wranglerDev = async (extra, cwd = ROOT) => {
    const port = await freePort();
    const inspector = await freePort();
    return {
      port,
      cwd,
      argv: [NODE, join(cwd, 'node_modules/wrangler/bin/wrangler.js'), 'dev', ...extra, '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector)],
      tmpfsState: true,
      env: wranglerEnv,
      readyPattern: /Ready on http/,
    };
  };
  // The reference has no rate limit; lift ours so the bench measures fan-out, not the limiter.
  const lifted = ['--var', 'RATE_LIMIT_PER_SECOND:100000', '--var', 'RATE_LIMIT_BURST:100000'];
  const noRecovery = ['--var', 'RECOVERY_WINDOW_MS:0'];
  const direct = 'pullRequestId={room}';
  const refPort = await freePort();
  return {
    // ours: the gateway path (the API document's client); ours-direct: the room in the URL.
    ours: { ...(await wranglerDev(lifted)), query: '' },
    'ours-direct': { ...(await wranglerDev(lifted)), query: direct, skipPolling: true },
    // The same with connection state recovery off (RECOVERY_WINDOW_MS=0: no message log).
    'ours-norec': { ...(await wranglerDev([...lifted, ...noRecovery])), query: '', skipPolling: true },
    'ours-direct-norec': { ...(await wranglerDev([...lifted, ...noRecovery])), query: direct, skipPolling: true },
    reference: {
      port: refPort,
      argv: [NODE, join(ROOT, 'bench/reference/server.mjs'), '--port', String(refPort)],
      env: {},
      readyPattern: /^READY reference/m,
      query: '',
    },
    floor: { ...(await wranglerDev(['-c', 'bench/floor/wrangler.toml'])), query: 'room={room}', skipPolling: true },
    ...(baseline && { baseline: { ...(await wranglerDev(lifted, baseline)), query: '', skipPolling: true } }),
  };
}

// Local Durable Object storage on tmpfs, fresh per server start. Local workerd commits each SQLite
// write with an fsync that blocks the object's thread (measured: a room writing its log per message
// served half the messages on disk that it served on tmpfs, at lower CPU); Cloudflare commits behind
// the output gate without blocking the object. The bench measures our code, not this machine's disk.
function tmpfsState() {
  return existsSync('/dev/shm') ? mkdtempSync(join('/dev/shm', 'pr-rooms-bench-')) : undefined;
}

// Starts one server; resolves to a handle once it both printed its ready line and answers HTTP,
// or rejects with the reason (and the tail of its log) if it exits or takes too long.
export async function startServer(name, spec, { cpu, logDir }) {
  const logPath = join(logDir, `${name}.log`);
  const log = createWriteStream(logPath);
  const state = spec.tmpfsState ? tmpfsState() : undefined;
  // Once the server is gone: its log is closed and its tmpfs state (see tmpfsState()) goes with it.
  const cleanUp = () => {
    log.end();
    if (state) rmSync(state, { recursive: true, force: true });
  };
  const serverArgv = state ? [...spec.argv, '--persist-to', state] : spec.argv;
  const argv = cpu !== null ? ['taskset', '-c', String(cpu), ...serverArgv] : serverArgv;
  const proc = spawn(argv[0], argv.slice(1), {
    cwd: spec.cwd ?? ROOT,
    detached: true, // own process group: one kill reaches wrangler and its workerd children
    stdio: ['ignore', 'pipe', 'pipe'],
    // NO_COLOR keeps the logs (and the failure reason we quote) free of ANSI escapes.
    env: { ...process.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}`, NO_COLOR: '1', FORCE_COLOR: '0', ...spec.env },
  });
  let output = '';
  let exited = null;
  let reloads = 0;
  const onData = (d) => {
    log.write(d);
    const text = d.toString();
    if (output.length < 200_000) output += text;
    // wrangler dev watches the sources and hot-reloads the worker on change, which drops every
    // socket; a scenario that saw one measured a restart, not the server.
    reloads += text.split('Reloading local server').length - 1;
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  const exitPromise = new Promise((r) => proc.on('exit', (code, sig) => r((exited = { code, sig }))));
  const handle = {
    name,
    pid: proc.pid,
    url: `http://127.0.0.1:${spec.port}`,
    query: spec.query,
    logPath,
    command: argv.join(' '),
    alive: () => exited === null,
    reloads: () => reloads,
    stop: () =>
      stopGroup(proc.pid, exitPromise, () => exited !== null).finally(cleanUp),
  };

  const deadline = Date.now() + STARTUP_CAP_MS;
  while (Date.now() < deadline) {
    if (exited) {
      cleanUp();
      throw new Error(`exited (code ${exited.code}, signal ${exited.sig}) before ready: ${tail(output)}`);
    }
    if (spec.readyPattern.test(output) && (await answersHttp(handle.url))) return handle;
    await sleep(200);
  }
  await handle.stop();
  throw new Error(`not ready after ${STARTUP_CAP_MS / 1000} s: ${tail(output)}`);
}

async function answersHttp(url) {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    await res.body?.cancel();
    return true; // any status: the port is served
  } catch {
    return false;
  }
}

// SIGTERM the group, then SIGKILL whatever of the tree is left. The tree is captured first:
// once wrangler's node exits, its workerd children are re-parented and no longer under its pid.
async function stopGroup(pid, exitPromise, hasExited) {
  const tree = treePids(pid).map((p) => ({ pid: p, id: identity(p) }));
  // Only processes that are still the very ones captured (same pid and start time).
  const ours = () => tree.filter((t) => t.id !== null && identity(t.pid) === t.id);
  const signalAll = (sig) => {
    if (!hasExited()) {
      try { process.kill(-pid, sig); } catch { /* group gone */ }
    }
    for (const t of ours()) {
      try { process.kill(t.pid, sig); } catch { /* already gone */ }
    }
  };
  signalAll('SIGTERM');
  await Promise.race([exitPromise, sleep(STOP_GRACE_MS)]);
  await sleep(300); // let children finish their own shutdown
  if (ours().length || !hasExited()) signalAll('SIGKILL');
}

// The first error line (what a reader needs in a one-line summary), then the last lines of output.
function tail(text, lines = 15) {
  const clean = text.replace(/\x1b\[[0-9;]*m/g, '').trim().split('\n');
  const error = clean.find((l) => /ERROR|Error:/.test(l));
  return [error?.trim() ?? '', ...clean.slice(-lines)].join('\n');
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
