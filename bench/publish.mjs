// Publish bench: HTTP API publishes per second, and their latency until delivery at a socket member.
//
//   node bench/publish.mjs [--duration 10] [--concurrency 16] [--subjects 200] [--pin=off]
//
// Starts ours (`wrangler dev`, as bench/run.mjs does) with AUTH_SECRET set, joins one socket.io-client
// member to a room, and POSTs /api/pull-requests/:id/messages from `concurrency` loops for `duration`
// seconds. Each request's latency is measured to its HTTP answer and to the member's pr-room-message
// (same clock). Tokens rotate over `subjects` subjects, so the per-subject budget (120 a minute) does
// not cap the bench; any 429 is still counted. Then 3 s of GET /healthz at the same concurrency shows
// what any HTTP request costs under wrangler dev. Prints a summary and writes bench/results/publish.json.
// `npm run bench` runs it after the socket scenarios (skip with --publish=off).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sign } from 'hono/jwt';
import { io } from 'socket.io-client';
import { parseArgs } from './lib/args.mjs';
import { Histogram } from './lib/histogram.mjs';
import { cpuDeltaUs, hasTaskset, otherCpuUs, pctOfCore, sampleMachine, sampleTree } from './lib/proc.mjs';
import { describeServers, ROOT, sleep, startServer } from './lib/servers.mjs';

const DRAIN_CAP_MS = 5_000; // after sending: wait this long at most for deliveries still under way
const WARMUP_REQUESTS = 20; // sequential, before the window: the room object and the isolate wake up
const PR = 4242;

const now = () => performance.timeOrigin + performance.now(); // epoch ms, sub-ms precision

/**
 * Runs the bench on its own server; resolves to the figures. `cpu`: cores to pin server and client to,
 * or null. `onServer` gets the server once started (so a caller's abort path can stop it).
 */
export async function benchPublish({ duration = 10, concurrency = 16, subjects = 200, cpu = null, logDir, say = () => {}, onServer = () => {} } = {}) {
  const secret = randomBytes(32).toString('hex');
  const spec = (await describeServers({ observability: 'off' })).ours;
  spec.argv.push('--var', `AUTH_SECRET:${secret}`);
  say('starting ours for the publish bench');
  const server = await startServer('ours-publish', spec, { cpu: cpu?.server ?? null, logDir });
  onServer(server);
  if (cpu) pinSelf(cpu.client);
  try {
    return await run(server, { secret, duration, concurrency, subjects, say });
  } finally {
    await server.stop();
  }
}

async function run(server, { secret, duration, concurrency, subjects, say }) {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const tokens = await Promise.all(Array.from({ length: subjects }, (_, i) => sign({ sub: `bench-bot-${i}`, scope: 'publish', exp }, secret, 'HS256')));
  const endpoint = `${server.url}/api/pull-requests/${PR}/messages`;

  // The member: the documented client, with a token of its own (identity is on).
  const member = io(server.url, { transports: ['websocket'], auth: { token: await sign({ sub: 'bench-member', exp }, secret, 'HS256') } });
  await new Promise((resolve, reject) => {
    member.once('connect', resolve);
    member.once('connect_error', reject);
  });
  const join = await member.timeout(10_000).emitWithAck('join-pr-room', { pullRequestId: PR, username: 'bench-member' });
  if (!join.ok) throw new Error(`join refused: ${JSON.stringify(join)}`);

  const sentAt = new Map(); // request number -> send time, until delivered
  let accepted = 0; // requests answered 201
  const delivery = new Histogram();
  const http = new Histogram();
  let delivered = 0;
  let timing = false;
  member.on('pr-room-message', (message) => {
    const n = Number(message.message.slice(2));
    const at = sentAt.get(n);
    if (at === undefined) return;
    sentAt.delete(n);
    if (!timing) return;
    delivery.record(now() - at);
    delivered++;
  });

  let next = 0;
  let statuses = {};
  const publishOne = async (token) => {
    const n = next++;
    const started = now();
    sentAt.set(n, started);
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ message: `p:${n}` }),
    });
    await response.arrayBuffer();
    statuses[response.status] = (statuses[response.status] ?? 0) + 1;
    if (response.status === 201) return now() - started; // ms until the answer
    sentAt.delete(n);
    return undefined;
  };

  for (let i = 0; i < WARMUP_REQUESTS; i++) await publishOne(tokens[i % subjects]);
  statuses = {};
  sentAt.clear();

  say(`publishing for ${duration} s from ${concurrency} loops over ${subjects} subjects`);
  const cpuBefore = sampleTree(server.pid);
  const self = process.cpuUsage(); // this process only (the server is a child, so not sampleTree)
  const machine = sampleMachine();
  timing = true;
  let turn = 0;
  const window = await closedLoop(concurrency, duration, async () => {
    const ms = await publishOne(tokens[turn++ % subjects]);
    if (ms === undefined) return;
    http.record(ms);
    accepted++;
  });
  const cpuAfter = sampleTree(server.pid);
  const selfUsage = process.cpuUsage(self);
  const selfUs = selfUsage.user + selfUsage.system;
  const machineAfter = sampleMachine();
  const drainEnd = now() + DRAIN_CAP_MS;
  while (delivered < accepted && now() < drainEnd) await sleep(20);
  member.close();
  const floor = await healthzFloor(server, concurrency);

  const serverUs = cpuDeltaUs(cpuBefore, cpuAfter);
  const machineMs = machineAfter.at - machine.at;
  return {
    durationS: Math.round(window * 10) / 10,
    concurrency,
    subjects,
    requests: Object.values(statuses).reduce((a, b) => a + b, 0),
    statuses,
    publishesPerSec: Math.round(accepted / window),
    httpLatencyMs: http.summary(),
    deliveryLatencyMs: delivery.summary(),
    lost: accepted - delivered,
    serverCpuUsPerPublish: accepted ? Math.round(serverUs / accepted) : null,
    serverCpuPctOfCore: Math.round(pctOfCore(serverUs, cpuAfter.at - cpuBefore.at)),
    clientCpuPctOfCore: Math.round(pctOfCore(selfUs, machineMs)),
    // Whatever else the machine ran meanwhile (other tests, other benches): above ~25% the figures are skewed.
    otherCpuPctOfCore: Math.max(0, Math.round(pctOfCore(otherCpuUs(machine, machineAfter, serverUs, selfUs), machineMs))),
    healthz: floor,
  };
}

/**
 * The same load on `GET /healthz` (no token, no room): what any HTTP request costs under `wrangler dev`
 * (its proxy and workerd), so the API's own share shows.
 */
async function healthzFloor(server, concurrency, seconds = 3) {
  const latency = new Histogram();
  const before = sampleTree(server.pid);
  let answered = 0;
  const window = await closedLoop(concurrency, seconds, async () => {
    const t = now();
    await (await fetch(`${server.url}/healthz`)).arrayBuffer();
    latency.record(now() - t);
    answered++;
  });
  const after = sampleTree(server.pid);
  return { requestsPerSec: Math.round(answered / window), latencyMs: latency.summary(), serverCpuUsPerRequest: Math.round(cpuDeltaUs(before, after) / answered) };
}

/**
 * A closed loop: `concurrency` loops each calling `fn` again as soon as it resolves, until `seconds`
 * have passed. Resolves, once the last call is done, to the seconds it all took.
 */
async function closedLoop(concurrency, seconds, fn) {
  const started = now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (now() < deadline) await fn();
    }),
  );
  return (now() - started) / 1000;
}

/** Moves this process (the client side) to its own core, as run.mjs does for the loadgen. */
function pinSelf(core) {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(core), String(process.pid)], { stdio: 'ignore' });
  } catch {
    // No taskset: the run says it is not pinned.
  }
}

/** Lines for a report. */
export function formatPublish(r) {
  const ms = (h) => `p50 ${h.p50} / p95 ${h.p95} / p99 ${h.p99} ms`;
  const others = Object.entries(r.statuses).filter(([status]) => status !== '201');
  return [
    `HTTP publish (POST /api/pull-requests/:id/messages, ${r.concurrency} in flight, ${r.durationS} s, one socket member)`,
    `  publishes/s             ${r.publishesPerSec}`,
    `  HTTP answer latency     ${ms(r.httpLatencyMs)}`,
    `  delivery to the member  ${ms(r.deliveryLatencyMs)}`,
    `  server CPU              ${r.serverCpuUsPerPublish} µs/publish (${r.serverCpuPctOfCore}% of a core; client ${r.clientCpuPctOfCore}%, other processes ${r.otherCpuPctOfCore}%)`,
    `  lost / other answers    ${r.lost} / ${others.length ? others.map(([s, n]) => `${n}x ${s}`).join(', ') : 'none'}`,
    `  for scale, GET /healthz ${r.healthz.requestsPerSec} req/s, ${ms(r.healthz.latencyMs)}, ${r.healthz.serverCpuUsPerRequest} µs/request (wrangler dev's HTTP path alone)`,
  ];
}

// Run directly: node bench/publish.mjs
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = parseArgs();
  const pin = args.pin !== 'off' && hasTaskset() ? { server: 0, client: 1 } : null;
  const resultsDir = join(ROOT, 'bench/results');
  const logDir = join(resultsDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const cap = setTimeout(() => {
    console.error('[publish] aborting: over 90 s');
    process.exit(3);
  }, 90_000);
  const result = await benchPublish({
    duration: Number(args.duration ?? 10),
    concurrency: Number(args.concurrency ?? 16),
    subjects: Number(args.subjects ?? 200),
    cpu: pin,
    logDir,
    say: (...a) => console.error('[publish]', ...a),
  });
  clearTimeout(cap);
  writeFileSync(join(resultsDir, 'publish.json'), JSON.stringify({ at: new Date().toISOString(), pinned: Boolean(pin), ...result }, null, 2));
  console.log(formatPublish(result).join('\n'));
  console.log(`(${pin ? 'taskset: server on core 0, client on core 1' : 'not pinned'}; written bench/results/publish.json)`);
}
