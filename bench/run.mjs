// One benchmark run: ours on both paths, with recovery on and off (wrangler dev on the root
// wrangler.toml) vs the socket.io reference vs the hibernatable-WebSocket floor, same load, side by side.
//
//   node bench/run.mjs [--quick] [--repeat N] [--client raw|socketio] [--deflate on|off] [--drain=complete]
//                      [--observability=on|off] [--pin=off] [--baseline REV]
//                      [--servers ours,ours-direct,ours-norec,ours-direct-norec,reference,floor]
//                      [--scenarios s1,s1p,s2,s3] [--chart PATH] [--publish=off]
//
// Every server is started once and kept running. Each round runs every scenario once on every
// server, one server after another in an order rotated per round, so that drift in the machine's
// speed hits all servers alike; --repeat rounds (3 by default, 1 with --quick). The tables show
// medians over the rounds and each server's ratio to the floor per round (median and range).
// Prints them and writes bench/results/latest.json and bench/results/chart.svg (logs in
// bench/results/logs/). --baseline runs another revision of this repository as "baseline". Then, for
// ours, the HTTP API's publish rate and latency to delivery (bench/publish.mjs), unless --publish=off.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from './lib/args.mjs';
import { describeServers, startServer, sleep, ROOT } from './lib/servers.mjs';
import { runLoadgen, killLoadgens } from './lib/loadgen-runner.mjs';
import { cpuDeltaUs, hasTaskset, pctOfCore, sampleMachine, sampleTree } from './lib/proc.mjs';
import { buildRatioTable, buildRows, formatRatioTable, formatTable, LG_MARK, LOADGEN_BOUND_PCT, notes, scenarioEntry } from './lib/report.mjs';
import { roundOrder } from './lib/rounds.mjs';
import { renderChart } from './lib/chart.mjs';
import { checkoutBaseline } from './lib/baseline.mjs';
import { benchPublish, formatPublish } from './publish.mjs';

const args = parseArgs();
const quick = Boolean(args.quick);
// --drain=complete: each scenario waits for every delivery, so "lost" is loss, not backlog (slower; see loadgen.mjs).
const drain = args.drain === 'complete' ? 'complete' : undefined;
// Off by default, as `npm start` runs (see BENCHMARKS.md for both settings).
const observability = args.observability === 'on' ? 'on' : 'off';
// Rounds: a full run repeats every scenario 3 times, for a median that repeats; quick runs once.
const repeat = Math.max(1, Math.floor(Number(args.repeat ?? (quick ? 1 : 3))) || 1);
// The WebSocket load's client: the light raw one, or socket.io-client (loadgen.mjs picks
// socket.io-client anyway for polling and --drain=complete).
if (args.client !== undefined && args.client !== 'raw' && args.client !== 'socketio') throw new Error(`--client must be raw or socketio, not ${args.client}`);
const client = args.client === 'socketio' ? 'socketio' : 'raw';
// permessage-deflate off by default, so that every server does the same work per frame (see loadgen.mjs).
const deflate = args.deflate === 'on' ? 'on' : 'off';
const baseline = typeof args.baseline === 'string' ? checkoutBaseline(args.baseline) : null;
// Quick mode skips s2 (one 200-member room); s1 and s3 are shortened.
// s1p is s1's shape over HTTP long-polling; the floor speaks WebSocket only and skips it.
const scenarios = String(args.scenarios ?? (quick ? 's1,s1p,s3' : 's1,s1p,s2,s3')).split(',');
// Servers whose spec says `skipPolling` (see describeServers) skip these.
const POLLING_SCENARIOS = new Set(['s1p']);
// Loadgen hard caps (its own watchdog is tighter; this is the backstop in loadgen-runner).
// 150 s for every scenario but the connect-only one.
const LOADGEN_CAP_MS = { connect: 120_000 };
const LOADGEN_DEFAULT_CAP_MS = drain ? 800_000 : 150_000;
const RSS_SAMPLE_MS = 250;
const SETTLE_MS = 1_000; // after start and between scenarios, so closing sockets do not bleed into the next window
// Whole run: a quick round of six servers takes ~5 min and a full one ~15 (measured with other
// jobs on the machine); plus starting them and the publish bench.
const RUN_CAP_MS = ((quick ? 10 : 20) * repeat + 5) * 60_000 * (drain ? 3 : 1);

const resultsDir = join(ROOT, 'bench/results');
const logDir = join(resultsDir, 'logs');
mkdirSync(logDir, { recursive: true });

// Server on core 0, the client (loadgen, publish bench) on core 1, so neither steals the other's CPU
// (when taskset exists and there are two cores; otherwise they share and the output says so).
const pinning = (() => {
  const taskset = hasTaskset();
  const cores = availableParallelism();
  if (args.pin === 'off') return { enabled: false, server: null, client: null, note: 'not pinned (--pin=off)' };
  if (!taskset || cores < 2) return { enabled: false, server: null, client: null, note: taskset ? `only ${cores} core(s): not pinned` : 'taskset not found: not pinned' };
  return { enabled: true, server: 0, client: 1, note: 'taskset: server trees on core 0, loadgen on core 1' };
})();

const say = (...a) => console.error('[bench]', ...a);

// Servers run in their own process groups, so they would outlive us on Ctrl-C or a hang: stop
// every one still running (and any loadgen) before exiting.
const live = new Map(); // name -> server handle
async function abort(why, code) {
  say(`aborting: ${why}`);
  killLoadgens();
  await Promise.all([...live.values()].map((s) => s.stop()));
  process.exit(code);
}
process.on('SIGINT', () => abort('SIGINT', 130));
process.on('SIGTERM', () => abort('SIGTERM', 143));
setTimeout(() => abort(`run exceeded ${RUN_CAP_MS / 60_000} min`, 3), RUN_CAP_MS).unref();

// An overloaded server keeps working off its backlog after the clients leave; wait for it to go
// quiet so that backlog is not billed to the next measurement.
const IDLE_PCT = 10; // % of one core
const IDLE_PROBE_MS = 500;
const IDLE_CAP_MS = 30_000;
async function waitIdle(pid) {
  const end = Date.now() + IDLE_CAP_MS;
  let pct = Infinity;
  while (Date.now() < end) {
    const a = sampleTree(pid);
    await sleep(IDLE_PROBE_MS);
    const b = sampleTree(pid);
    pct = pctOfCore(cpuDeltaUs(a, b), b.at - a.at);
    if (pct < IDLE_PCT) return { idle: true, pct };
  }
  return { idle: false, pct };
}

/** Starts one server; its entry in the results says whether it came up. */
async function start(name, spec) {
  const out = { status: 'unavailable', scenarios: {} };
  try {
    say(`starting ${name}`);
    const server = await startServer(name, spec, { cpu: pinning.server, logDir });
    live.set(name, server);
    out.status = 'ok';
    out.command = server.command;
    await sleep(SETTLE_MS);
    const idle = sampleTree(server.pid);
    out.idleRssBytes = idle.rssBytes;
    out.processes = idle.procs;
    out.peakRssBytes = idle.rssBytes;
  } catch (err) {
    out.reason = String(err.message ?? err);
    say(`${name} unavailable: ${out.reason.split('\n')[0]} (log: bench/results/logs/${name}.log)`);
  }
  return out;
}

// While a server is measured, its tree's RSS every RSS_SAMPLE_MS (the others idle meanwhile).
function trackPeakRss(server, out) {
  const sample = () => { out.peakRssBytes = Math.max(out.peakRssBytes ?? 0, sampleTree(server.pid).rssBytes); };
  const timer = setInterval(sample, RSS_SAMPLE_MS);
  return () => { clearInterval(timer); sample(); };
}

/** One scenario on one server in one round (numbered from 1); null if the server is gone. */
async function measure(name, scenario, round, position, out) {
  const server = live.get(name);
  if (!server?.alive()) {
    out.status = 'failed';
    out.reason ??= `server exited before ${scenario} in round ${round}; see bench/results/logs/${name}.log`;
    return null;
  }
  const tag = `round ${round}/${repeat} ${scenario} ${name}`;
  say(tag);
  const reloadsBefore = server.reloads();
  const stopTracking = trackPeakRss(server, out);
  const run = await runLoadgen({
    server, scenario, quick, drain, client, deflate, cpu: pinning.client,
    logPath: join(logDir, `${name}-${scenario}-r${round}.loadgen.log`),
    capMs: LOADGEN_CAP_MS[scenario] ?? LOADGEN_DEFAULT_CAP_MS,
  });
  stopTracking();
  run.round = round;
  run.position = position;
  run.reloads = server.reloads() - reloadsBefore;
  const r = run.result;
  const bound = r.loadgenCpuPct >= LOADGEN_BOUND_PCT ? ` ${LG_MARK} loadgen at ${r.loadgenCpuPct}% of its core` : '';
  say(`${tag} -> ${r.error ? `error: ${r.error}` : `${r.deliveredPerSec} msgs/s, ${Math.round(run.server.cpuUsPerMsg ?? 0) || '-'} µs/msg, p99 ${r.latencyMs?.p99} ms, lost ${r.lost}`}${bound}${run.reloads ? ` (worker reloaded ${run.reloads}x: invalid)` : ''}`);
  const settleStart = performance.now();
  await sleep(SETTLE_MS);
  const idle = await waitIdle(server.pid);
  if (!idle.idle) say(`${name}: still busy (${idle.pct.toFixed(0)}% of a core) ${IDLE_CAP_MS / 1000} s after ${scenario}`);
  run.settleS = Math.round((performance.now() - settleStart) / 100) / 10; // where a run's time goes
  return run;
}

// What the idle servers cost the one being measured: the machine's busy CPU over a second with
// no load, as % of a core (run.mjs's own sampling included). Shown so a reader can judge it.
async function idleMachinePct() {
  const a = sampleMachine();
  await sleep(1_000);
  const b = sampleMachine();
  return Math.round(pctOfCore(b.busyUs - a.busyUs, b.at - a.at));
}

// Storage rows written per message, from the rooms' own `room_stats` lines: every row the rooms
// were billed for writing (SQL rows from the cursors, KV puts, alarms set) over the messages they
// took. Lines from an alarm or a join carry rows but no `messages`.
function storageRows(logPath) {
  let messages = 0, rows = 0;
  for (const line of readFileSync(logPath, 'utf8').split('\n')) {
    const at = line.indexOf('{"evt":"room_stats"');
    if (at === -1) continue;
    try {
      const stats = JSON.parse(line.slice(at));
      messages += stats.messages ?? 0;
      rows += stats.rowsWritten ?? 0;
    } catch { /* a line cut by the log's buffering */ }
  }
  return messages > 0 ? { messages, rowsWritten: rows, rowsPerMessage: rows / messages } : undefined;
}

const started = new Date();
const t0 = performance.now();
say(`mode=${quick ? 'quick' : 'full'} rounds=${repeat} client=${drain ? 'socketio (drain=complete)' : client} deflate=${deflate} scenarios=${scenarios.join(',')} observability=${observability} (wrangler servers) ${pinning.note}`);
const specs = await describeServers({ observability, baseline: baseline?.dir });
// By default every server describeServers knows, in its order (the baseline only with --baseline).
const serverNames = (args.servers === undefined ? Object.keys(specs) : String(args.servers).split(',')).filter((name) => {
  if (!specs[name]) say(`unknown server ${name}`);
  return Boolean(specs[name]);
});

const results = {};
for (const name of serverNames) results[name] = await start(name, specs[name]);
const idleBeforePct = await idleMachinePct();
say(`all servers up; the machine idles at ${idleBeforePct}% of a core`);

// runs[name][scenario] = that server's runs of that scenario, one per round.
const runs = Object.fromEntries(serverNames.map((name) => [name, Object.fromEntries(scenarios.map((s) => [s, []]))]));
const order = []; // per round and scenario, the order the servers ran in (latest.json)
try {
  for (let round = 1; round <= repeat; round++) {
    for (const scenario of scenarios) {
      const names = roundOrder(serverNames, round - 1, repeat).filter((name) => results[name].status === 'ok' && !(specs[name].skipPolling && POLLING_SCENARIOS.has(scenario)));
      order.push({ round, scenario, servers: names });
      for (const [position, name] of names.entries()) {
        const run = await measure(name, scenario, round, position, results[name]);
        if (run) runs[name][scenario].push(run);
      }
    }
  }
} finally {
  await Promise.all([...live.values()].map((s) => s.stop()));
}
for (const name of serverNames) {
  live.delete(name);
  const out = results[name];
  for (const scenario of scenarios) if (runs[name][scenario].length) out.scenarios[scenario] = scenarioEntry(runs[name][scenario]);
  if (out.status !== 'unavailable') out.storage = storageRows(join(logDir, `${name}.log`));
}

// The HTTP API's publish path: ours only, on a server of its own (AUTH_SECRET set).
let publish = null;
if (args.publish !== 'off' && serverNames.includes('ours')) {
  try {
    publish = await benchPublish({ duration: quick ? 5 : 10, cpu: pinning.enabled ? pinning : null, logDir, say, onServer: (server) => live.set('ours-publish', server) });
  } catch (err) {
    publish = { error: String(err.message ?? err) };
    say(`publish bench failed: ${publish.error.split('\n')[0]} (log: bench/results/logs/ours-publish.log)`);
  }
  live.delete('ours-publish');
}

const rows = buildRows(results, scenarios, repeat);
const ratios = buildRatioTable(results, scenarios, repeat);
const report = {
  startedAt: started.toISOString(),
  durationS: Math.round((performance.now() - t0) / 100) / 10,
  mode: quick ? 'quick' : 'full',
  rounds: repeat,
  client: drain ? 'socketio (drain=complete)' : client,
  permessageDeflate: deflate,
  scenarios,
  observability: `${observability} (${observability === 'off' ? 'X_LOCAL_OBSERVABILITY=false' : "wrangler's default"}; applies to ours and floor)`,
  pinning: pinning.note,
  idleMachinePctOfCore: idleBeforePct,
  baseline: baseline ? `${args.baseline} (${baseline.sha}), run with this checkout's node_modules` : undefined,
  node: process.version,
  cores: availableParallelism(),
  loadgenBottleneckPct: LOADGEN_BOUND_PCT,
  // Every server and scenario in which the client, not the server, was the bottleneck in some round.
  loadgenBottlenecks: Object.entries(results).flatMap(([server, res]) => Object.entries(res.scenarios).filter(([, e]) => e.summary.loadgenBottleneck).map(([scenario, e]) => ({ server, scenario, ...e.summary.loadgenBottleneck, maxLoadgenCpuPct: e.summary.loadgenCpuPct?.max }))),
  order,
  rows,
  ratios,
  notes: notes(results),
  servers: results,
  publish,
};
writeFileSync(join(resultsDir, 'latest.json'), JSON.stringify(report, null, 2));
writeFileSync(join(resultsDir, 'chart.svg'), renderChart(report));
if (typeof args.chart === 'string') copyFileSync(join(resultsDir, 'chart.svg'), join(ROOT, args.chart));

const roundsNote = repeat > 1 ? `medians of ${repeat} rounds` : 'one round';
console.log(`\nPR-room bench (${report.mode}, ${report.durationS} s, ${roundsNote}, ${report.client} client, permessage-deflate ${deflate}) | observability ${observability} | ${pinning.note}`);
for (const [name, r] of Object.entries(results)) {
  if (r.status !== 'ok') console.log(`  ${name}: ${r.status}${r.reason ? ` (${r.reason.split('\n')[0]})` : ''}`);
}
console.log(formatTable(rows, results));
if (ratios.length) {
  console.log(`\nRatios per round (${repeat > 1 ? `median [min–max] over ${repeat} rounds` : 'one round: no spread; use --repeat 3'}), each server against the floor, then the other target pairs:`);
  console.log(formatRatioTable(ratios, repeat));
}
if (report.loadgenBottlenecks.length) console.log(`\n${LG_MARK} = the load generator used ≥ ${LOADGEN_BOUND_PCT}% of its core in that many rounds: the client, not the server, was the bottleneck, and the server's figure is a lower bound.`);
if (publish) console.log(`\n${publish.error ? `HTTP publish: failed (${publish.error.split('\n')[0]})` : formatPublish(publish).join('\n')}`);
if (report.notes.length) console.log(`\nnotes:\n${report.notes.map((n) => `  - ${n}`).join('\n')}`);
console.log(`\nwritten bench/results/latest.json and chart.svg${typeof args.chart === 'string' ? ` (copied to ${args.chart})` : ''}; logs in bench/results/logs/`);
