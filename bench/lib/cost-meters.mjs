// The server's own meters, read from its log: the rooms' `room_stats` lines, the polling
// sessions' `polling_stats` lines and the Worker's `connection_stats` lines (one per client
// connection, when it ends). Every count in a stats line is a delta since that object's
// previous line, so what an object cost over any stretch is the sum of its lines.
import { closeSync, openSync, readFileSync, readSync, fstatSync } from 'node:fs';
import { join } from 'node:path';

/** Billed Durable Object units, as the stats lines name them. */
export const DO_FIELDS = ['doRequests', 'fetches', 'rpcs', 'wsMessages', 'alarms', 'rowsWritten', 'sqlRowsWritten', 'kvWrites', 'alarmWrites', 'rowsRead', 'awakeMs', 'messages'];
/** What the Worker's connection lines carry (`requests` is what the first version named `workerRequests`). */
export const WORKER_FIELDS = ['workerRequests', 'requests', 'framesIn', 'framesOut', 'roomFetches', 'roomMessages', 'recordCalls', 'workerCpuMs'];

export const zeroOf = (fields) => Object.fromEntries(fields.map((f) => [f, 0]));

export function addInto(total, line, fields) {
  for (const f of fields) {
    const v = line[f];
    if (typeof v === 'number' && Number.isFinite(v)) total[f] += v;
  }
  return total;
}

/**
 * Follows a server's log file as wrangler writes it and keeps every stats line with the time it
 * was read (arrival, within ~100 ms of the object writing it). Lines that are not ours are skipped.
 */
export class LogTail {
  constructor(path, everyMs = 100) {
    this.path = path;
    this.offset = 0;
    this.partial = '';
    /** { at: epoch ms read, evt, line } */
    this.lines = [];
    this.timer = setInterval(() => this.poll(), everyMs);
  }

  poll() {
    let fd;
    try {
      fd = openSync(this.path, 'r');
      const size = fstatSync(fd).size;
      if (size <= this.offset) return;
      const buf = Buffer.alloc(size - this.offset);
      readSync(fd, buf, 0, buf.length, this.offset);
      this.offset = size;
      const text = this.partial + buf.toString('utf8');
      const parts = text.split('\n');
      this.partial = parts.pop();
      const at = Date.now();
      for (const raw of parts) {
        const i = raw.indexOf('{"evt":"');
        if (i === -1) continue;
        try {
          const line = JSON.parse(raw.slice(i).trim());
          this.lines.push({ at, evt: line.evt, line });
        } catch { /* a line cut by the log's buffering, or not JSON after all */ }
      }
    } catch { /* not there yet */ } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  stop() {
    this.poll();
    clearInterval(this.timer);
  }

  /** Stats lines of one kind, optionally only those read in [from, to]. */
  of(evt, { from = -Infinity, to = Infinity } = {}) {
    return this.lines.filter((l) => l.evt === evt && l.at >= from && l.at <= to);
  }
}

/** Whether the room meters carry the fields bench/cost.mjs reads (the first version of room_stats had only messages and rowsWritten). */
export function meterCoverage(tail) {
  const rooms = tail.of('room_stats');
  const polls = tail.of('polling_stats');
  const conns = tail.of('connection_stats');
  return {
    roomStats: rooms.length,
    roomStatsMetered: rooms.filter((l) => typeof l.line.doRequests === 'number').length,
    pollingStats: polls.length,
    connectionStats: conns.length,
  };
}

/**
 * The defaults the units are scaled to: from wrangler.toml [vars] (what a deploy uses), else the
 * fallback in src/chat/config.ts's schema. DIRECT_PING_INTERVAL_MS falls back to PING_INTERVAL_MS
 * (what the direct path used before it had its own).
 */
export function readDefaults(root) {
  const toml = safeRead(join(root, 'wrangler.toml'));
  const config = safeRead(join(root, 'src/chat/config.ts'));
  const vars = {};
  const section = /^\[vars\]\s*$([\s\S]*?)(?=^\[|$(?![\s\S]))/m.exec(toml)?.[1] ?? '';
  for (const m of section.matchAll(/^\s*([A-Z_][A-Z0-9_]*)\s*=\s*"?([^"\n#]*)"?/gm)) vars[m[1]] = m[2].trim();
  const pick = (name) => {
    if (vars[name] !== undefined && /^\d+$/.test(vars[name])) return { value: Number(vars[name]), from: 'wrangler.toml [vars]' };
    const m = new RegExp(`${name}:\\s*integer\\(\\s*([\\d_]+)`).exec(config);
    if (m) return { value: Number(m[1].replaceAll('_', '')), from: 'src/chat/config.ts' };
    return undefined;
  };
  const out = {};
  for (const name of ['PING_INTERVAL_MS', 'PING_TIMEOUT_MS', 'DIRECT_PING_INTERVAL_MS', 'TYPING_TIMEOUT_MS', 'RECOVERY_WINDOW_MS', 'PRESENCE_GRACE_MS']) {
    const got = pick(name);
    if (got) out[name] = got;
  }
  if (!out.DIRECT_PING_INTERVAL_MS && out.PING_INTERVAL_MS) {
    out.DIRECT_PING_INTERVAL_MS = { value: out.PING_INTERVAL_MS.value, from: 'PING_INTERVAL_MS (no DIRECT_PING_INTERVAL_MS in this revision)' };
  }
  return out;
}

function safeRead(path) {
  try { return readFileSync(path, 'utf8'); } catch { return ''; }
}
