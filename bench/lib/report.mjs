// Turns per-server results into one side-by-side table: a column per server, then the ratios the
// targets are stated in (ours over the reference and the floor, recovery on over off, ...).
const KB = 1024;
const MB = 1024 * 1024;

const sc = (res, name) => res?.scenarios?.[name];
const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

// Ratio columns, shown when both servers ran: [label, numerator, denominator].
const RATIOS = [
  ['ours/ref', 'ours', 'reference'],
  ['ours/floor', 'ours', 'floor'],
  ['direct/floor', 'ours-direct', 'floor'],
  ['direct/ours', 'ours-direct', 'ours'],
  ['rec on/off', 'ours', 'ours-norec'],
  ['direct rec on/off', 'ours-direct', 'ours-direct-norec'],
  ['off/baseline', 'ours-norec', 'baseline'],
];

function scenarioRows(name) {
  const r = (res) => sc(res, name)?.result;
  const s = (res) => sc(res, name)?.server;
  return [
    [`${name} delivered msgs/s`, (x) => num(r(x)?.deliveredPerSec)],
    [`${name} latency p50 (ms)`, (x) => num(r(x)?.latencyMs?.p50)],
    [`${name} latency p95 (ms)`, (x) => num(r(x)?.latencyMs?.p95)],
    [`${name} latency p99 (ms)`, (x) => num(r(x)?.latencyMs?.p99)],
    [`${name} lost / dup / out-of-order`, (x) => (r(x) && r(x).lost !== undefined ? `${r(x).lost} / ${r(x).duplicated} / ${r(x).outOfOrder}` : null)],
    [`${name} failed conn / disconn / bad acks`, (x) => (r(x)?.connect ? `${r(x).connect.failed} / ${r(x).disconnects} / ${r(x).ackTimeouts + Object.values(r(x).ackErrors ?? {}).reduce((a, b) => a + b, 0)}` : null)],
    [`${name} server CPU µs/msg`, (x) => num(s(x)?.cpuUsPerMsg)],
    [`${name} server CPU % of a core`, (x) => num(s(x)?.cpuPctOfCore)],
    [`${name} drain after sending (s)`, (x) => num(r(x)?.drainS)],
    [`${name} loadgen CPU % of a core`, (x) => num(r(x)?.loadgenCpuPct)],
    [`${name} other procs CPU % of a core`, (x) => num(s(x)?.otherCpuPctOfCore)],
  ];
}

/** One row per metric: `values` per server, `ratios` per ratio column. */
export function buildRows(results, scenarios) {
  const first = scenarios[0];
  const rows = [
    [`connect+join rate (conn/s, ${first})`, (x) => num(sc(x, first)?.result?.connect?.perSec)],
    [`connect+join p95 (ms, ${first})`, (x) => num(sc(x, first)?.result?.connect?.latencyMs?.p95)],
    [`server CPU µs/connection (${first})`, (x) => num(sc(x, first)?.server?.cpuUsPerConn)],
    [`RSS KB/connection (${first})`, (x) => num(sc(x, first)?.server?.rssBytesPerConn) !== null ? sc(x, first).server.rssBytesPerConn / KB : null],
    ['idle RSS (MB)', (x) => (num(x?.idleRssBytes) !== null ? x.idleRssBytes / MB : null)],
    ['peak RSS (MB)', (x) => (num(x?.peakRssBytes) !== null ? x.peakRssBytes / MB : null)],
    ['storage rows written/msg', (x) => num(x?.storage?.rowsPerMessage)],
    ...scenarios.flatMap(scenarioRows),
  ];
  return rows.map(([label, get]) => {
    const values = Object.fromEntries(Object.keys(results).map((name) => [name, get(results[name])]));
    const ratios = Object.fromEntries(RATIOS.map(([col, a, b]) => [col, ratio(values[a], values[b])]));
    return { metric: label, values, ratios };
  });
}

function ratio(a, b) {
  return typeof a === 'number' && typeof b === 'number' && b !== 0 ? a / b : null;
}

function fmt(v) {
  if (v === null || v === undefined) return '-';
  if (typeof v !== 'number') return String(v);
  if (v === 0) return '0';
  const abs = Math.abs(v);
  if (abs >= 1000) return Math.round(v).toLocaleString('en-US');
  if (abs >= 100) return v.toFixed(0);
  if (abs >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

// Caveats a reader must see next to the numbers.
export function notes(results) {
  const out = [];
  for (const [server, res] of Object.entries(results)) {
    for (const [scenario, run] of Object.entries(res?.scenarios ?? {})) {
      const r = run.result;
      if (run.reloads) out.push(`${server} ${scenario}: INVALID, wrangler hot-reloaded the worker ${run.reloads}x mid-scenario (sources changed), dropping sockets`);
      if (r.error) out.push(`${server} ${scenario}: ${r.error}`);
      if (run.server?.otherCpuPctOfCore >= 25) out.push(`${server} ${scenario}: other processes used ${Math.round(run.server.otherCpuPctOfCore)}% of a core during the window: numbers skewed`);
      if (r.loadgenCpuPct >= 85) out.push(`${server} ${scenario}: loadgen used ${r.loadgenCpuPct}% of its core, so the client may be the bottleneck`);
      if (r.drainEndedBy === 'cap' && r.lost > 0) out.push(`${server} ${scenario}: ${r.lost} deliveries still missing when the ${r.drainS} s drain cap hit while messages were still arriving: backlog (server over capacity), not necessarily loss`);
      else if (r.drainS >= 1) out.push(`${server} ${scenario}: deliveries lagged ${r.drainS} s behind sending (server over capacity)`);
    }
  }
  return out;
}

export function formatTable(rows, results) {
  const names = Object.keys(results);
  const status = (name) => (results[name]?.status === 'ok' ? name : `${name} (${results[name]?.status ?? 'skipped'})`);
  const ratioCols = RATIOS.filter(([, a, b]) => results[a]?.status === 'ok' && results[b]?.status === 'ok').map(([col]) => col);
  const header = ['metric', ...names.map(status), ...ratioCols];
  const body = rows.map((r) => [
    r.metric,
    ...names.map((name) => fmt(r.values[name])),
    ...ratioCols.map((col) => (r.ratios[col] === null ? '-' : `${fmt(r.ratios[col])}x`)),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
