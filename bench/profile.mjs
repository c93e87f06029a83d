// Where the server's CPU goes: starts one wrangler-served server (ours, ours-direct, ours-norec,
// ours-direct-norec or floor, as bench/lib/servers.mjs describes them), loads it with s1
// below capacity, then (1) splits CPU between its processes (wrangler's Node dev proxy, each
// workerd) and (2) takes a CPU profile of the Worker's isolate through workerd's inspector and
// prints the functions with the most self time.
//
//   node bench/profile.mjs [--server ours|ours-direct|ours-norec|ours-direct-norec|floor] [--clients 500] [--seconds 3]
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from './lib/args.mjs';
import { treePids } from './lib/proc.mjs';
import { describeServers, NODE, ROOT, sleep, startServer } from './lib/servers.mjs';

const args = parseArgs();
const which = String(args.server ?? 'ours');
const clients = Number(args.clients ?? 500);
const seconds = Number(args.seconds ?? 3);
const logDir = join(ROOT, 'bench/results/logs');
mkdirSync(logDir, { recursive: true });
const hardCap = setTimeout(() => { console.error('profile: hard time cap'); process.exit(2); }, 120_000);

const specs = await describeServers({ observability: 'off' });
const spec = specs[which];
if (!spec) throw new Error(`--server must be one of ${Object.keys(specs).join(', ')}, not ${which}`);
const inspectorPort = spec.argv[spec.argv.indexOf('--inspector-port') + 1];
const server = await startServer(which, spec, { cpu: null, logDir });

try {
  const loadgen = spawn(NODE, [
    join(ROOT, 'bench/loadgen.mjs'), '--url', server.url, '--scenario', 's1', '--clients', String(clients),
    '--rooms', String(clients / 10), '--duration', '15', ...(spec.query ? ['--query', spec.query] : []),
  ], { stdio: 'ignore' });
  // The connect phase first; then measure while messages flow.
  await sleep(Math.max(4000, clients * 10));
  const before = ticksByProcess(server.pid);
  await sleep(3000);
  const after = ticksByProcess(server.pid);
  console.log(`CPU by process, ${clients} clients in rooms of 10, one message/s each (${clients * 10} deliveries/s):`);
  for (const [pid, { name, ticks }] of after) {
    const was = before.get(pid)?.ticks ?? ticks;
    console.log(`  ${String(pid).padStart(7)} ${name.padEnd(12)} ${(((ticks - was) / 3)).toFixed(0).padStart(4)}% of a core`);
  }
  console.log(`\nCPU profile of the Worker isolate, ${seconds} s:`);
  printProfile(await profile(inspectorPort, seconds));
  loadgen.kill();
} finally {
  await server.stop();
  clearTimeout(hardCap);
}

function ticksByProcess(rootPid) {
  const out = new Map();
  for (const pid of treePids(rootPid)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(pid, { name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch { /* exited */ }
  }
  return out;
}

// Chrome DevTools Protocol over wrangler's inspector proxy (which wants a devtools Origin).
async function profile(port, secs) {
  const [target] = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const ws = new WebSocket(target.webSocketDebuggerUrl, { headers: { Origin: 'https://devtools.devprod.cloudflare.dev' } });
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  let id = 0;
  const pending = new Map();
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    pending.get(message.id)?.(message);
    pending.delete(message.id);
  };
  const call = (method, params = {}) => new Promise((resolve) => {
    pending.set(++id, resolve);
    ws.send(JSON.stringify({ id, method, params }));
  });
  await call('Profiler.enable');
  await call('Profiler.setSamplingInterval', { interval: 200 });
  await call('Profiler.start');
  await sleep(secs * 1000);
  const { result } = await call('Profiler.stop');
  ws.close();
  return result.profile;
}

function printProfile(profile) {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  let total = 0;
  profile.samples.forEach((nodeId, i) => {
    const { callFrame: f } = nodes.get(nodeId);
    const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber + 1}`;
    const us = profile.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  });
  for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    console.log(`  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${key}`);
  }
}
