// Process-tree accounting from /proc: `wrangler dev` is a Node process with workerd children (and
// they may fork more), so CPU and memory must be summed over the whole tree, not one pid.
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const CLK_TCK = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { return 100; }
})();
const PAGE_SIZE = (() => {
  try { return Number(execFileSync('getconf', ['PAGESIZE']).toString().trim()) || 4096; } catch { return 4096; }
})();

// /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces, so split after ')'.
function readStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // f[0]=state f[1]=ppid ... f[11]=utime f[12]=stime f[19]=starttime f[21]=rss (pages)
    return { ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]), start: f[19], rssPages: Number(f[21]) };
  } catch {
    return null; // exited between readdir and read
  }
}

// pid + start time identifies a process even if its pid is later reused by another.
export function identity(pid) {
  const st = readStat(pid);
  return st ? `${pid}@${st.start}` : null;
}

export function treePids(rootPid) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(name);
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(Number(name));
    children.set(st.ppid, list);
  }
  const out = [];
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop();
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

// CPU (µs, user+system) and RSS (bytes) summed over the tree, plus CPU per process identity so a
// delta survives processes coming and going (wrangler restarts workerd on reload).
export function sampleTree(rootPid) {
  let ticks = 0, rssPages = 0;
  const cpuByProc = new Map();
  for (const pid of treePids(rootPid)) {
    const st = readStat(pid);
    if (!st) continue;
    ticks += st.utime + st.stime;
    rssPages += st.rssPages;
    cpuByProc.set(`${pid}@${st.start}`, ((st.utime + st.stime) * 1e6) / CLK_TCK);
  }
  return { cpuUs: (ticks * 1e6) / CLK_TCK, cpuByProc, rssBytes: rssPages * PAGE_SIZE, procs: cpuByProc.size, at: performance.now() };
}

// CPU µs the tree spent between two samples: per process, so a restarted child is not read as
// negative time. CPU of processes that exited in between is lost (an undercount, flagged by the
// caller via reloads/exits).
export function cpuDeltaUs(a, b) {
  let us = 0;
  for (const [id, cpu] of b.cpuByProc) us += cpu - (a.cpuByProc.get(id) ?? 0);
  return us;
}

// Busy CPU µs of the whole machine (all cores), to spot load from outside the bench.
export function sampleMachine() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait
  const busy = f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0);
  return { busyUs: (busy * 1e6) / CLK_TCK, at: performance.now() };
}

// CPU µs the machine spent between two sampleMachine() samples on anything but `knownUs` (the
// server, the client): load from outside the bench. May come out below 0 (sampling skew).
export function otherCpuUs(a, b, ...knownUs) {
  let us = b.busyUs - a.busyUs;
  for (const known of knownUs) us -= known;
  return us;
}

// `us` of CPU over `ms` of wall time, as % of one core.
export const pctOfCore = (us, ms) => (us / 1e3 / ms) * 100;

// Whether `taskset` (util-linux) is there to pin the server and the client to cores.
export function hasTaskset() {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
