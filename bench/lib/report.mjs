// Turns the rounds' results into tables: a column per server, each figure the median over the
// rounds (counts of loss and failures summed, so that one bad round shows), and the ratios the
// targets are stated in, each the median of the per-round ratios (both servers measured in the
// same round, minutes apart, so the machine's drift between rounds cancels out); then every
// server's ratio to the floor per round, with the range it spanned.
import { median, ratio, spread } from './stats.mjs';

const KB = 1024;
const MB = 1024 * 1024;

/** At or above this share of its core the load generator, not the server, was the bottleneck. */
export const LOADGEN_BOUND_PCT = 85;
/** Marks a figure measured while the load generator was the bottleneck (in at least one round). */
export const LG_MARK = 'LG!';

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const num = (v) => (isNum(v) ? v : null);

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

/** The run of one server in one scenario and round (numbered from 1), if there was one. */
const runIn = (res, scenario, round) => res?.scenarios?.[scenario]?.rounds?.find((r) => r.round === round);

/** Whether the load generator was the bottleneck in this run (it measures its own CPU over the sending window). */
export const loadgenBound = (run) => (run?.result?.loadgenCpuPct ?? 0) >= LOADGEN_BOUND_PCT;

/**
 * What latest.json keeps per server and scenario: every round's run, their medians and ranges,
 * and (for readers of a single run, such as older scripts) the round whose delivered msgs/s is
 * the median, as `result` and `server`.
 */
export function scenarioEntry(runs) {
  const ranked = runs.filter((r) => isNum(r.result?.deliveredPerSec)).sort((a, b) => a.result.deliveredPerSec - b.result.deliveredPerSec);
  const mid = ranked[(ranked.length - 1) >> 1] ?? runs.at(-1);
  const bound = runs.filter(loadgenBound);
  return {
    result: mid?.result,
    server: mid?.server,
    reloads: runs.reduce((n, r) => n + (r.reloads ?? 0), 0),
    medianRound: mid?.round,
    summary: {
      roundsRun: runs.length,
      deliveredPerSec: spread(runs.map((r) => r.result?.deliveredPerSec)),
      cpuUsPerMsg: spread(runs.map((r) => r.server?.cpuUsPerMsg)),
      latencyP99Ms: spread(runs.map((r) => r.result?.latencyMs?.p99)),
      loadgenCpuPct: spread(runs.map((r) => r.result?.loadgenCpuPct)),
      // null, or the rounds in which the client was the bottleneck: the server's figure is then a lower bound.
      loadgenBottleneck: bound.length ? { rounds: bound.map((r) => r.round), of: runs.length } : null,
    },
    rounds: runs,
  };
}

// Per-run figures of a scenario, in table order: [label, value of one run, 'median' | 'sum'].
// 'sum' values are arrays of counts, added up over the rounds.
function scenarioMetrics(name) {
  const r = (run) => run?.result;
  const s = (run) => run?.server;
  return [
    [`${name} delivered msgs/s`, (x) => r(x)?.deliveredPerSec, 'median'],
    [`${name} latency p50 (ms)`, (x) => r(x)?.latencyMs?.p50, 'median'],
    [`${name} latency p95 (ms)`, (x) => r(x)?.latencyMs?.p95, 'median'],
    [`${name} latency p99 (ms)`, (x) => r(x)?.latencyMs?.p99, 'median'],
    [`${name} lost / dup / out-of-order`, (x) => (r(x)?.lost !== undefined ? [r(x).lost, r(x).duplicated, r(x).outOfOrder] : null), 'sum'],
    [`${name} failed conn / disconn / bad acks`, (x) => (r(x)?.connect ? [r(x).connect.failed, r(x).disconnects, r(x).ackTimeouts + Object.values(r(x).ackErrors ?? {}).reduce((a, b) => a + b, 0)] : null), 'sum'],
    [`${name} server CPU µs/msg`, (x) => s(x)?.cpuUsPerMsg, 'median'],
    [`${name} server CPU % of a core`, (x) => s(x)?.cpuPctOfCore, 'median'],
    [`${name} drain after sending (s)`, (x) => r(x)?.drainS, 'median'],
    [`${name} loadgen CPU % of a core`, (x) => r(x)?.loadgenCpuPct, 'median'],
    [`${name} loadgen CPU µs/msg`, (x) => r(x)?.loadgenCpuUsPerMsg, 'median'],
    [`${name} other procs CPU % of a core`, (x) => s(x)?.otherCpuPctOfCore, 'median'],
  ].map(([label, get, agg]) => ({ label, scenario: name, get, agg, marked: /delivered|loadgen CPU %/.test(label) }));
}

// The connect phase and memory, from the first scenario (s1's 1,000 connects), per run. Memory
// per connection from round 1 only: the servers stay up, and later rounds' connections reuse
// what earlier ones freed, so their RSS hardly grows.
function connectMetrics(first) {
  const r = (run) => run?.result;
  const s = (run) => run?.server;
  return [
    [`connect+join rate (conn/s, ${first})`, (x) => r(x)?.connect?.perSec, 'median'],
    [`connect+join p95 (ms, ${first})`, (x) => r(x)?.connect?.latencyMs?.p95, 'median'],
    [`server CPU µs/connection (${first})`, (x) => s(x)?.cpuUsPerConn, 'median'],
    [`RSS KB/connection (${first}, round 1)`, (x) => (isNum(s(x)?.rssBytesPerConn) ? s(x).rssBytesPerConn / KB : null), 'first'],
  ].map(([label, get, agg]) => ({ label, scenario: first, get, agg }));
}

// Per server, over the whole run.
const SERVER_METRICS = [
  ['idle RSS (MB)', (x) => (isNum(x?.idleRssBytes) ? x.idleRssBytes / MB : null)],
  ['peak RSS (MB)', (x) => (isNum(x?.peakRssBytes) ? x.peakRssBytes / MB : null)],
  ['storage rows written/msg', (x) => x?.storage?.rowsPerMessage],
];

/**
 * One row per metric: `values` per server (the median over rounds, or the sum for counts),
 * `perRound` per server, `ratios` per ratio column (the median of the per-round ratios) with
 * `ratioRange` [min, max], and `marks` where the load generator was the bottleneck.
 */
export function buildRows(results, scenarios, rounds) {
  const names = Object.keys(results);
  const roundIds = Array.from({ length: rounds }, (_, i) => i + 1);
  return [
    ...connectMetrics(scenarios[0]).map((m) => perRunRow(m, results, names, roundIds)),
    ...SERVER_METRICS.map(([label, get]) => serverRow(label, get, results, names)),
    ...scenarios.flatMap(scenarioMetrics).map((m) => perRunRow(m, results, names, roundIds)),
  ];
}

function perRunRow({ label, scenario, get, agg, marked }, results, names, roundIds) {
  // perRound[name][i] is round i + 1's value (rounds are numbered from 1).
  const perRound = Object.fromEntries(names.map((n) => [n, roundIds.map((r) => {
    const run = runIn(results[n], scenario, r);
    const v = run ? get(run) : null;
    return Array.isArray(v) ? v : num(v);
  })]));
  if (agg === 'sum') {
    const values = Object.fromEntries(names.map((n) => [n, sumCounts(perRound[n])]));
    return { metric: label, values, perRound, ratios: nullRatios(), ratioRange: nullRatios() };
  }
  // 'first': round 1's figure alone (a ratio column is then that round's ratio).
  const used = agg === 'first' ? 1 : roundIds.length;
  const values = Object.fromEntries(names.map((n) => [n, median(perRound[n].slice(0, used))]));
  const ratios = {}, ratioRange = {};
  for (const [col, a, b] of RATIOS) {
    const s = spread(roundIds.slice(0, used).map((_, i) => ratio(perRound[a]?.[i], perRound[b]?.[i])));
    ratios[col] = s?.median ?? null;
    ratioRange[col] = s ? [s.min, s.max] : null;
  }
  const marks = marked ? Object.fromEntries(names.filter((n) => results[n]?.scenarios?.[scenario]?.summary?.loadgenBottleneck).map((n) => [n, LG_MARK])) : {};
  return { metric: label, values, perRound, ratios, ratioRange, marks };
}

function serverRow(label, get, results, names) {
  const values = Object.fromEntries(names.map((n) => [n, num(get(results[n]))]));
  const ratios = Object.fromEntries(RATIOS.map(([col, a, b]) => [col, ratio(values[a], values[b])]));
  return { metric: label, values, ratios };
}

const nullRatios = () => Object.fromEntries(RATIOS.map(([col]) => [col, null]));

// "a / b / c" summed over the rounds that have the counts.
function sumCounts(parts) {
  const have = parts.filter(Array.isArray);
  if (have.length === 0) return null;
  return have.reduce((acc, p) => acc.map((v, i) => v + (p[i] ?? 0))).join(' / ');
}

/**
 * Every server against the floor, then the other ratio columns' pairs: per scenario, the
 * per-round ratios of delivered msgs/s and of server CPU µs/msg, their median and range, and the
 * rounds in which either side's load generator was the bottleneck.
 */
export function buildRatioTable(results, scenarios, rounds) {
  const names = Object.keys(results);
  const roundIds = Array.from({ length: rounds }, (_, i) => i + 1);
  const pairs = [
    ...(names.includes('floor') ? names.filter((n) => n !== 'floor').map((n) => [`${n}/floor`, n, 'floor']) : []),
    ...RATIOS.filter(([, a, b]) => a !== 'floor' && b !== 'floor' && names.includes(a) && names.includes(b)),
  ];
  const out = [];
  for (const scenario of scenarios) {
    for (const [pair, a, b] of pairs) {
      const per = (get) => roundIds.map((r) => ratio(get(runIn(results[a], scenario, r)), get(runIn(results[b], scenario, r))));
      const delivered = per((run) => run?.result?.deliveredPerSec);
      const cpu = per((run) => run?.server?.cpuUsPerMsg);
      if (!delivered.some(isNum) && !cpu.some(isNum)) continue;
      const bound = roundIds.filter((r) => loadgenBound(runIn(results[a], scenario, r)) || loadgenBound(runIn(results[b], scenario, r)));
      out.push({
        scenario, pair, numerator: a, denominator: b,
        deliveredPerSec: { ...spread(delivered), perRound: delivered },
        cpuUsPerMsg: { ...spread(cpu), perRound: cpu },
        loadgenBottleneckRounds: bound,
      });
    }
  }
  return out;
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

const fmtRatio = (v) => (v === null || v === undefined ? '-' : `${fmt(v)}x`);

// "0.61x [0.55–0.70]": the median of the rounds' ratios and their range (just the ratio for one round).
function fmtSpread(s) {
  if (!s || s.median === undefined || s.median === null) return '-';
  return s.n > 1 ? `${fmtRatio(s.median)} [${fmt(s.min)}–${fmt(s.max)}]` : fmtRatio(s.median);
}

// Caveats a reader must see next to the numbers, one line per server and scenario and kind.
export function notes(results) {
  const out = [];
  for (const [server, res] of Object.entries(results)) {
    for (const [scenario, entry] of Object.entries(res?.scenarios ?? {})) {
      const runs = entry.rounds ?? [];
      const tag = `${server} ${scenario}`;
      const where = (rs) => (runs.length > 1 ? ` in ${rs.length === runs.length ? 'every round' : `round${rs.length > 1 ? 's' : ''} ${rs.map((r) => r.round).join(', ')} of ${runs.length}`}` : '');
      const reloaded = runs.filter((r) => r.reloads);
      if (reloaded.length) out.push(`${tag}: INVALID${where(reloaded)}, wrangler hot-reloaded the worker mid-scenario (sources changed), dropping sockets`);
      for (const r of runs.filter((x) => x.result?.error)) out.push(`${tag}${where([r])}: ${r.result.error}`);
      const busy = runs.filter((r) => r.server?.otherCpuPctOfCore >= 25);
      if (busy.length) out.push(`${tag}: other processes used up to ${Math.round(Math.max(...busy.map((r) => r.server.otherCpuPctOfCore)))}% of a core during the window${where(busy)}: numbers skewed`);
      const bound = runs.filter(loadgenBound);
      if (bound.length) out.push(`${tag}: ${LG_MARK} the load generator used up to ${Math.max(...bound.map((r) => r.result.loadgenCpuPct))}% of its core${where(bound)}: the client, not the server, was the bottleneck; the server's figures are a lower bound`);
      const unread = runs.filter((r) => r.result?.malformed || r.result?.foreign);
      if (unread.length) out.push(`${tag}: ${unread.map((r) => `${r.result.malformed} malformed / ${r.result.foreign} foreign`).join(', ')} messages${where(unread)}: not the loadgen's own, or unreadable (uncounted)`);
      const capped = runs.filter((r) => r.result?.drainEndedBy === 'cap' && r.result.lost > 0);
      if (capped.length) out.push(`${tag}: ${capped.map((r) => r.result.lost).join(' / ')} deliveries still missing when the ${capped[0].result.drainS} s drain cap hit while messages were still arriving${where(capped)}: backlog (server over capacity), not necessarily loss`);
      const lagged = runs.filter((r) => !capped.includes(r) && r.result?.drainS >= 1);
      if (lagged.length) out.push(`${tag}: deliveries lagged ${lagged.map((r) => r.result.drainS).join(' / ')} s behind sending${where(lagged)} (server over capacity)`);
    }
  }
  return out;
}

// Text columns (the first `left`) flush left, figures flush right.
function layout(header, body, left = 1) {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function formatTable(rows, results) {
  const names = Object.keys(results);
  const status = (name) => (results[name]?.status === 'ok' ? name : `${name} (${results[name]?.status ?? 'skipped'})`);
  const ratioCols = RATIOS.filter(([, a, b]) => results[a]?.scenarios && results[b]?.scenarios && results[a].status !== 'unavailable' && results[b].status !== 'unavailable').map(([col]) => col);
  const header = ['metric', ...names.map(status), ...ratioCols];
  const body = rows.map((r) => [
    r.metric,
    ...names.map((name) => `${fmt(r.values[name])}${r.marks?.[name] ? ` ${r.marks[name]}` : ''}`),
    ...ratioCols.map((col) => fmtRatio(r.ratios[col])),
  ]);
  return layout(header, body);
}

export function formatRatioTable(ratios, rounds) {
  const header = ['scenario', 'pair', 'delivered msgs/s', 'server CPU µs/msg', 'loadgen bottleneck'];
  const body = ratios.map((r) => [
    r.scenario, r.pair, fmtSpread(r.deliveredPerSec), fmtSpread(r.cpuUsPerMsg),
    r.loadgenBottleneckRounds.length ? `${LG_MARK} ${r.loadgenBottleneckRounds.length}/${rounds}` : '',
  ]);
  return layout(header, body, 2);
}
