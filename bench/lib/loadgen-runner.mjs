// Runs bench/loadgen.mjs as a separate process (so the client side never shares an event loop
// or a core with the server) and samples the server's process tree at the phases it announces.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE, ROOT } from './servers.mjs';
import { cpuDeltaUs, otherCpuUs, pctOfCore, sampleMachine, sampleTree } from './proc.mjs';

const EXTRA_CAP_MS = 20_000; // on top of loadgen's own hard cap, in case it wedges anyway
const running = new Set();

// For run.mjs's abort path: loadgens are our children, stop them by pid.
export function killLoadgens() {
  for (const p of running) p.kill('SIGKILL');
}

export function runLoadgen({ server, scenario, quick, drain, client, deflate, cpu, logPath, capMs }) {
  const args = [join(ROOT, 'bench/loadgen.mjs'), '--url', server.url, '--scenario', scenario];
  if (quick) args.push('--quick');
  if (drain) args.push(`--drain=${drain}`);
  if (client) args.push('--client', client);
  if (deflate) args.push('--deflate', deflate);
  if (server.query) args.push('--query', server.query);
  const argv = cpu !== null ? ['taskset', '-c', String(cpu), NODE, ...args] : [NODE, ...args];

  const t0 = performance.now();
  return new Promise((resolve) => {
    const proc = spawn(argv[0], argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(proc);
    const samples = {};
    let result = null;
    const killer = setTimeout(() => proc.kill('SIGKILL'), capMs + EXTRA_CAP_MS);
    proc.stderr.on('data', (d) => appendFileSync(logPath, d));
    createInterface({ input: proc.stdout }).on('line', (line) => {
      let msg;
      try { msg = JSON.parse(line); } catch { return appendFileSync(logPath, `${line}\n`); }
      // Sample synchronously on the phase line so the window matches loadgen's within a few ms.
      if (msg.event === 'phase') {
        samples[msg.phase] = { server: sampleTree(server.pid), loadgen: sampleTree(proc.pid), machine: sampleMachine() };
      }
      else if (msg.event === 'result') result = msg;
    });
    proc.on('exit', (code, sig) => {
      running.delete(proc);
      clearTimeout(killer);
      if (!result) result = { error: `loadgen exited (code ${code}, signal ${sig}) without a result` };
      resolve({ result, server: serverCost(samples, result), wallS: Math.round((performance.now() - t0) / 100) / 10 });
    });
  });
}

// Server-side cost from the samples: CPU per connection (connect phase) and per delivered message
// (send window), memory per connection (growth over the connect phase), and how busy the machine
// was with anything else (another test run skews every number).
function serverCost(s, r) {
  const out = {};
  const joined = r.connect?.joined ?? 0;
  if (s.connecting && s.connected && joined > 0) {
    out.cpuUsPerConn = cpuDeltaUs(s.connecting.server, s.connected.server) / joined;
    out.rssBytesPerConn = (s.connected.server.rssBytes - s.connecting.server.rssBytes) / joined;
    out.rssBytesConnected = s.connected.server.rssBytes;
  }
  const a = s['measure-start'], b = s['measure-end'];
  if (a && b) {
    const cpuUs = cpuDeltaUs(a.server, b.server);
    const ms = b.server.at - a.server.at;
    out.cpuPctOfCore = pctOfCore(cpuUs, ms);
    if (r.deliveredInWindow > 0) out.cpuUsPerMsg = cpuUs / r.deliveredInWindow;
    out.otherCpuPctOfCore = Math.max(0, pctOfCore(otherCpuUs(a.machine, b.machine, cpuUs, cpuDeltaUs(a.loadgen, b.loadgen)), ms));
  }
  return out;
}
