// One benchmark run: ours on both paths, with recovery on and off (wrangler dev on the root
// wrangler.toml) vs the socket.io reference vs the hibernatable-WebSocket floor, same load, side by side.
//
//   node bench/run.mjs [--quick] [--drain=complete] [--observability=on|off] [--pin=off] [--baseline REV]
//                      [--servers ours,ours-direct,ours-norec,ours-direct-norec,reference,floor]
//                      [--scenarios s1,s1p,s2,s3] [--chart PATH] [--publish=off]
//
// Prints a table and writes bench/results/latest.json and bench/results/chart.svg (logs in
// bench/results/logs/). --baseline runs another revision of this repository as "baseline". Then, for
// ours, the HTTP API's publish rate and latency to delivery (bench/publish.mjs), unless --publish=off.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from './lib/args.mjs';
import { describeServers, startServer, sleep, ROOT } from './lib/servers.mjs';
import { runLoadgen, killLoadgens } from './lib/loadgen-runner.mjs';
import { cpuDeltaUs, hasTaskset, pctOfCore, sampleTree } from './lib/proc.mjs';
import { buildRows, formatTable, notes } from './lib/report.mjs';
import { renderChart } from './lib/chart.mjs';
import { checkoutBaseline } from './lib/baseline.mjs';
import { benchPublish, formatPublish } from './publish.mjs';

const args = parseArgs();
const quick = Boolean(args.quick);
// --drain=complete: each scenario waits for every delivery, so "lost" is loss, not backlog (slower; see loadgen.mjs).
const drain = args.drain === 'complete' ? 'complete' : undefined;
// Off by default, as `npm start` runs (see BENCHMARKS.md for both settings).
const observability = args.observability === 'on' ? 'on' : 'off';
const baseline = typeof args.baseline === 'string' ? checkoutBaseline(args.baseline) : null;
// Quick mode skips s2 (one 200-member room) to stay under two minutes; s1 and s3 are shortened.
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
const RUN_CAP_MS = (quick ? 12 : 30) * 60_000 * (drain ? 3 : 1); // whole run; with six servers, quick runs take ~5 min and full ones ~12

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
  return { enabled: true, server: 0, client: 1, note: 'taskset: server tree on core 0, loadgen on core 1' };
})();

const say = (...a) => console.error('[bench]', ...a);

// Servers run in their own process groups, so they would outlive us on Ctrl-C or a hang: stop
// the current one (and any loadgen) before exiting.
let current = null;
async function abort(why, code) {
  say(`aborting: ${why}`);
  killLoadgens();
  await current?.stop();
  process.exit(code);
}
process.on('SIGINT', () => abort('SIGINT', 130));
process.on('SIGTERM', () => abort('SIGTERM', 143));
setTimeout(() => abort(`run exceeded ${RUN_CAP_MS / 60_000} min`, 3), RUN_CAP_MS).unref();

// An overloaded server keeps working off its backlog after the clients leave; wait for it to go
// quiet so that backlog is not billed to the next scenario.
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

async function benchServer(name, spec) {
  const out = { status: 'unavailable', scenarios: {} };
  let server;
  try {
    say(`starting ${name}`);
    server = current = await startServer(name, spec, { cpu: pinning.server, logDir });
  } catch (err) {
    out.reason = String(err.message ?? err);
    say(`${name} unavailable: ${out.reason.split('\n')[0]} (log: bench/results/logs/${name}.log)`);
    return out;
  }
  out.status = 'ok';
  out.command = server.command;
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, sampleTree(server.pid).rssBytes);
  }, RSS_SAMPLE_MS);
  try {
    await sleep(SETTLE_MS);
    out.idleRssBytes = sampleTree(server.pid).rssBytes;
    out.processes = sampleTree(server.pid).procs;
    for (const scenario of scenarios) {
      if (!server.alive()) {
        out.status = 'failed';
        out.reason = `server exited before ${scenario}; see bench/results/logs/${name}.log`;
        break;
      }
      if (spec.skipPolling && POLLING_SCENARIOS.has(scenario)) {
        say(`${name}: ${scenario} skipped (WebSocket only)`);
        continue;
      }
      say(`${name}: ${scenario}`);
      const reloadsBefore = server.reloads();
      const run = await runLoadgen({ server, scenario, quick, drain, cpu: pinning.client, logPath: join(logDir, `${name}-${scenario}.loadgen.log`), capMs: LOADGEN_CAP_MS[scenario] ?? LOADGEN_DEFAULT_CAP_MS });
      run.reloads = server.reloads() - reloadsBefore;
      out.scenarios[scenario] = run;
      const r = run.result;
      say(`${name}: ${scenario} -> ${r.error ? `error: ${r.error}` : `${r.deliveredPerSec} msgs/s, p99 ${r.latencyMs?.p99} ms, lost ${r.lost}`}${run.reloads ? ` (worker reloaded ${run.reloads}x: invalid)` : ''}`);
      await sleep(SETTLE_MS);
      const idle = await waitIdle(server.pid);
      if (!idle.idle) say(`${name}: still busy (${idle.pct.toFixed(0)}% of a core) ${IDLE_CAP_MS / 1000} s after ${scenario}`);
    }
  } finally {
    clearInterval(sampler);
    out.peakRssBytes = Math.max(peak, sampleTree(server.pid).rssBytes);
    await server.stop();
    current = null;
  }
  out.storage = storageRows(server.logPath);
  return out;
}

// Storage rows written per message, from the rooms' own `room_stats` lines (counted from the
// SQLite cursors' rowsWritten: the log's inserts, its pruning, the seq counter).
function storageRows(logPath) {
  let messages = 0, rows = 0;
  for (const line of readFileSync(logPath, 'utf8').split('\n')) {
    const at = line.indexOf('{"evt":"room_stats"');
    if (at === -1) continue;
    try {
      const stats = JSON.parse(line.slice(at));
      messages += stats.messages;
      rows += stats.rowsWritten;
    } catch { /* a line cut by the log's buffering */ }
  }
  return messages > 0 ? { messages, rowsWritten: rows, rowsPerMessage: rows / messages } : undefined;
}

const started = new Date();
const t0 = performance.now();
say(`mode=${quick ? 'quick' : 'full'} scenarios=${scenarios.join(',')} observability=${observability} (wrangler servers) ${pinning.note}`);
const specs = await describeServers({ observability, baseline: baseline?.dir });
// By default every server describeServers knows, in its order (the baseline only with --baseline).
const serverNames = args.servers === undefined ? Object.keys(specs) : String(args.servers).split(',');
const results = {};
for (const name of serverNames) {
  if (!specs[name]) { say(`unknown server ${name}`); continue; }
  results[name] = await benchServer(name, specs[name]);
}

// The HTTP API's publish path: ours only, on a server of its own (AUTH_SECRET set).
let publish = null;
if (args.publish !== 'off' && serverNames.includes('ours')) {
  try {
    publish = await benchPublish({ duration: quick ? 5 : 10, cpu: pinning.enabled ? pinning : null, logDir, say, onServer: (server) => (current = server) });
  } catch (err) {
    publish = { error: String(err.message ?? err) };
    say(`publish bench failed: ${publish.error.split('\n')[0]} (log: bench/results/logs/ours-publish.log)`);
  }
  current = null;
}

const rows = buildRows(results, scenarios);
const report = {
  startedAt: started.toISOString(),
  durationS: Math.round((performance.now() - t0) / 100) / 10,
  mode: quick ? 'quick' : 'full',
  scenarios,
  observability: `${observability} (${observability === 'off' ? 'X_LOCAL_OBSERVABILITY=false' : "wrangler's default"}; applies to ours and floor)`,
  pinning: pinning.note,
  baseline: baseline ? `${args.baseline} (${baseline.sha}), run with this checkout's node_modules` : undefined,
  node: process.version,
  cores: availableParallelism(),
  rows,
  notes: notes(results),
  servers: results,
  publish,
};
writeFileSync(join(resultsDir, 'latest.json'), JSON.stringify(report, null, 2));
writeFileSync(join(resultsDir, 'chart.svg'), renderChart(report));
if (typeof args.chart === 'string') copyFileSync(join(resultsDir, 'chart.svg'), join(ROOT, args.chart));

console.log(`\nPR-room bench (${report.mode}, ${report.durationS} s) | observability ${observability} | ${pinning.note}`);
for (const [name, r] of Object.entries(results)) {
  if (r.status !== 'ok') console.log(`  ${name}: ${r.status}${r.reason ? ` (${r.reason.split('\n')[0]})` : ''}`);
}
console.log(formatTable(rows, results));
if (publish) console.log(`\n${publish.error ? `HTTP publish: failed (${publish.error.split('\n')[0]})` : formatPublish(publish).join('\n')}`);
if (report.notes.length) console.log(`\nnotes:\n${report.notes.map((n) => `  - ${n}`).join('\n')}`);
console.log(`\nwritten bench/results/latest.json and chart.svg${typeof args.chart === 'string' ? ` (copied to ${args.chart})` : ''}; logs in bench/results/logs/`);
