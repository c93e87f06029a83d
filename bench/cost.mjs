// What the server costs on Cloudflare's bill, per room-hour and for a reference fleet (issue 19).
//
//   npm run cost                      # ~8 min: gateway, direct and polling, idle and review
//   npm run cost -- --paths direct --rooms 6
//
// Per path, two `wrangler dev` servers: one with a short heartbeat (2 s) for the idle scenario,
// whose units per heartbeat round are scaled to the default interval; one with the default
// heartbeat for the events of the review scenario (messages; typing then a message; reconnects),
// each measured in cohorts of fresh rooms of 5 real socket.io-client members. Units come from the
// server's own meters in its log (`room_stats`, `polling_stats`, `connection_stats`), Worker CPU
// from /proc. bench/README.md ("Cost") has the method. Output: a table on stdout and
// bench/results/cost.json; server logs in bench/results/logs/cost-*.log.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from './lib/args.mjs';
import { freePort, NODE, ROOT, sleep, startServer } from './lib/servers.mjs';
import { cpuDeltaUs, hasTaskset, sampleTree, treePids } from './lib/proc.mjs';
import { connectRooms, PATHS, Room } from './lib/cost-clients.mjs';
import { addInto, DO_FIELDS, LogTail, meterCoverage, readDefaults, WORKER_FIELDS, zeroOf } from './lib/cost-meters.mjs';
import { FLEET, perRoomHour, REVIEW, formatReport } from './lib/cost-model.mjs';

const args = parseArgs();
const paths = String(args.paths ?? PATHS.join(',')).split(',').filter(Boolean);
for (const p of paths) if (!PATHS.includes(p)) fail(`unknown path ${p} (gateway, direct, polling)`);
const ROOMS = Number(args.rooms ?? 10);
const MEMBERS = 5;

const prices = JSON.parse(readFileSync(join(ROOT, 'bench/prices.json'), 'utf8'));
const defaults = readDefaults(ROOT);
for (const need of ['PING_INTERVAL_MS', 'DIRECT_PING_INTERVAL_MS']) if (!defaults[need]) fail(`cannot read the default ${need} from wrangler.toml or src/chat/config.ts`);
const defaultIntervalMs = (path) => (path === 'direct' ? defaults.DIRECT_PING_INTERVAL_MS.value : defaults.PING_INTERVAL_MS.value);

// The idle server: a short heartbeat on both paths, IDLE_ROUNDS rounds in the steady window.
const IDLE = {
  intervalMs: Number(args.interval ?? 2000),
  rounds: Number(args['idle-rounds'] ?? 10),
  // Longer than a round, so a late round on a busy machine drops nobody. The length costs
  // nothing: the gateway sets and clears one pong timer per ping whatever it is, and the direct
  // path judges pongs at its next round.
  pingTimeoutMs: 5000,
};
// The events server: the default heartbeat, and two timers shortened so that a cohort takes
// seconds, with the shapes of the defaults kept: typing is renewed every 0.4 x TYPING_TIMEOUT_MS
// (the chat page renews every 2 s against the server's 5 s: the same chain of expiry alarms), and
// the recovery window is 6 s, after which each message's log row and each departed connection is
// pruned by an alarm of its own, as at the defaults, where messages are minutes apart.
const EVENTS = {
  typingTimeoutMs: 2000,
  recoveryWindowMs: 6000,
};
EVENTS.typingGapMs = Math.round(EVENTS.typingTimeoutMs * 0.4);
// After a cohort's last event, before its members leave: every alarm the events set (typing
// expiry, pruning) has fired, so none of them merges with the alarms of the leaving.
EVENTS.afterMs = Math.max(EVENTS.recoveryWindowMs, EVENTS.typingTimeoutMs) + 1500;
const MESSAGES_PER_ROOM = 3;
const MESSAGE_GAP_MS = 3000;
const CYCLES_PER_ROOM = 3;
const RECONNECT_GAP_MS = 2000;
const QUIET_MS = 3000;
const HEALTHZ_REQUESTS = 100;
const RUN_CAP_MS = 15 * 60_000;

const say = (...a) => console.error('[cost]', ...a);
function fail(msg) {
  console.error(`[cost] ${msg}`);
  process.exit(2);
}

const resultsDir = join(ROOT, 'bench/results');
const logDir = join(resultsDir, 'logs');
mkdirSync(logDir, { recursive: true });

// Not pinned by default: CPU time is what is measured, and a server pinned to a core another run
// also uses answers late (clients then time out). --pin=on puts servers on core 0 as run.mjs does.
const pin = args.pin === 'on' && hasTaskset() && availableParallelism() >= 2 ? 0 : null;

const live = new Set();
async function abort(why, code) {
  say(`aborting: ${why}`);
  await Promise.all([...live].map((s) => s.stop()));
  process.exit(code);
}
process.on('SIGINT', () => abort('SIGINT', 130));
process.on('SIGTERM', () => abort('SIGTERM', 143));
setTimeout(() => abort(`run exceeded ${RUN_CAP_MS / 60_000} min`, 3), RUN_CAP_MS).unref();

// ---- servers ------------------------------------------------------------------------------------

async function start(name, vars) {
  const port = await freePort();
  const inspector = await freePort();
  const spec = {
    port,
    argv: [
      NODE, join(ROOT, 'node_modules/wrangler/bin/wrangler.js'), 'dev',
      ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]),
      '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector),
    ],
    tmpfsState: true, // fresh Durable Object state on tmpfs, as the bench's servers (see servers.mjs)
    env: { CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_METRICS: 'false', X_LOCAL_OBSERVABILITY: 'false' },
    readyPattern: /Ready on http/,
  };
  const server = await startServer(name, spec, { cpu: pin, logDir });
  live.add(server);
  server.vars = vars;
  server.runtimeId = runtimeProcess(server, port);
  if (!server.runtimeId) say(`${name}: could not tell the runtime's workerd from the dev proxy's: CPU is the whole tree's`);
  server.tail = new LogTail(server.logPath);
  server.reloads0 = server.reloads();
  return server;
}

async function stop(server) {
  server.tail.stop();
  await server.stop();
  live.delete(server);
}

function describe(server) {
  return { command: server.command, log: server.logPath.slice(ROOT.length + 1), vars: server.vars, reloads: server.reloads() - server.reloads0, cpuFrom: server.runtimeId ? 'runtime workerd' : 'whole tree' };
}

/**
 * The process that runs our code. `wrangler dev` is a tree: wrangler's Node process (it logs
 * every HTTP request), a workerd for its dev proxy on the public port, and a workerd running the
 * Worker and every Durable Object. Only the last one exists in production, so CPU is read from it
 * (the whole tree's is kept beside it). Null when it cannot be told apart: then the tree is used.
 */
function runtimeProcess(server, port) {
  const workerds = [];
  for (const pid of treePids(server.pid)) {
    let cmd = '';
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '); } catch { continue; }
    if (/\/workerd\s/.test(cmd)) workerds.push({ pid, cmd });
  }
  const user = workerds.filter((w) => !w.cmd.includes(`entry=127.0.0.1:${port} `));
  if (user.length !== 1) return null;
  const id = [...sampleTree(user[0].pid).cpuByProc.keys()].find((k) => k.startsWith(`${user[0].pid}@`));
  return id ?? null;
}

/** A CPU window on a server; .end() closes it. cpuUs: the runtime's (or the tree's); treeUs: the whole tree's. */
function cpuWindow(server) {
  const a = sampleTree(server.pid);
  const t0 = Date.now();
  return {
    t0,
    end() {
      const b = sampleTree(server.pid);
      const treeUs = cpuDeltaUs(a, b);
      const id = server.runtimeId;
      const runtimeUs = id && b.cpuByProc.has(id) ? b.cpuByProc.get(id) - (a.cpuByProc.get(id) ?? 0) : null;
      return { t0, t1: Date.now(), ms: b.at - a.at, cpuUs: runtimeUs ?? treeUs, treeUs };
    },
  };
}

async function quietWindow(server) {
  const win = cpuWindow(server);
  await sleep(QUIET_MS);
  return win.end();
}

/** Waits until a server's log has had no new stats line for `idleMs` (at most `capMs`). */
async function quietLog(tail, idleMs = 2000, capMs = 10_000) {
  const end = Date.now() + capMs;
  let count = -1, since = Date.now();
  while (Date.now() < end) {
    tail.poll();
    if (tail.lines.length !== count) [count, since] = [tail.lines.length, Date.now()];
    else if (Date.now() - since >= idleMs) return;
    await sleep(200);
  }
}

// ---- cohorts ------------------------------------------------------------------------------------

const prBase = (1 + Math.floor(Math.random() * 8_999)) * 100_000;
let cohortSeq = 0;
const newRooms = (path, n = ROOMS) => {
  const index = cohortSeq++;
  return Array.from({ length: n }, (_, i) => new Room({ path, pullRequestId: prBase + index * 100 + i + 1, size: MEMBERS }));
};

/** Fresh rooms connect and join, settle, run `events` inside a CPU window, and leave. */
async function cohort(server, path, name, events, { settleMs = 1000, gapAfterMs = 0 } = {}) {
  const rooms = newRooms(path);
  const startedAt = Date.now();
  const whole = cpuWindow(server);
  const failed = await connectRooms(rooms, server.url, 5);
  if (failed.length) say(`${path}/${name}: ${failed.length} room(s) failed to connect: ${failed[0].error}`);
  const ok = rooms.filter((r) => !failed.some((f) => f.pullRequestId === r.pullRequestId));
  await sleep(settleMs);
  const win = cpuWindow(server);
  const counts = await events(ok);
  const cpu = win.end();
  for (const r of rooms) r.close();
  await sleep(500 + gapAfterMs);
  // The whole cohort too (connect, join, leave): what a session costs the server.
  return { name, rooms: ok, failed, startedAt, endedAt: Date.now(), cpu, cpuAll: whole.end(), counts };
}

const text = (k, who) => `comment ${k} from ${who}: the retry loop here needs a backoff, and a test for the timeout; otherwise LGTM`;

async function messageEvents(rooms) {
  let n = 0;
  await Promise.all(rooms.map(async (room, i) => {
    await sleep((i * 137) % 1000); // rooms out of step, as real ones are
    for (let k = 0; k < MESSAGES_PER_ROOM; k++) {
      const m = room.members[k % MEMBERS];
      await m.say(text(k, m.username));
      n++;
      if (k < MESSAGES_PER_ROOM - 1) await sleep(MESSAGE_GAP_MS);
    }
  }));
  await sleep(EVENTS.afterMs);
  return { messages: n };
}

async function cycleEvents(rooms) {
  let n = 0;
  await Promise.all(rooms.map(async (room, i) => {
    await sleep((i * 137) % 1000);
    for (let k = 0; k < CYCLES_PER_ROOM; k++) {
      const m = room.members[(k + 1) % MEMBERS];
      for (let t = 0; t < 5; t++) {
        m.typing();
        await sleep(EVENTS.typingGapMs);
      }
      await m.say(text(k, m.username));
      n++;
      // The message ends the typing, but the expiry's alarm stays set: let it fire first.
      if (k < CYCLES_PER_ROOM - 1) await sleep(EVENTS.typingTimeoutMs + 500);
    }
  }));
  await sleep(EVENTS.afterMs);
  return { cycles: n };
}

async function reconnectEvents(rooms) {
  let n = 0, recovered = 0;
  await Promise.all(rooms.map(async (room, i) => {
    await sleep((i * 211) % 1000);
    for (const [j, m] of room.members.entries()) {
      const before = m.recovered;
      try {
        await m.reconnect();
        n++;
        recovered += m.recovered - before;
      } catch (err) {
        say(`reconnect failed: ${err.message}`);
      }
      if (j < room.members.length - 1) await sleep(RECONNECT_GAP_MS);
    }
  }));
  await sleep(EVENTS.afterMs);
  return { reconnects: n, recovered };
}

/** Every code path the cohorts take, once, in rooms nobody counts (JIT, modules, SQLite schemas). */
async function warmUp(server, path) {
  const rooms = newRooms(path, 2);
  try {
    await connectRooms(rooms, server.url);
    for (const room of rooms) {
      room.members[0].typing();
      await room.members[0].say('warming up');
      await room.members[1].reconnect();
    }
    for (let i = 0; i < 20; i++) await (await fetch(`${server.url}/healthz`)).arrayBuffer();
  } catch (err) {
    say(`${path}: warm-up: ${err.message}`);
  }
  for (const r of rooms) r.close();
}

async function healthzCpu(server) {
  const win = cpuWindow(server);
  for (let i = 0; i < HEALTHZ_REQUESTS; i++) await (await fetch(`${server.url}/healthz`)).arrayBuffer();
  return win.end();
}

// ---- the two measurements of a path -------------------------------------------------------------

/** Idle: rooms of 5 connected and joined, then a steady window of heartbeat rounds with no traffic. */
async function measureIdle(path) {
  const server = await start(`cost-${path}-idle`, { PING_INTERVAL_MS: IDLE.intervalMs, DIRECT_PING_INTERVAL_MS: IDLE.intervalMs, PING_TIMEOUT_MS: IDLE.pingTimeoutMs });
  try {
    await sleep(2000);
    const quiet = await quietWindow(server);
    // Settle until the connect phase's alarms have run (a direct room's first round, whose line
    // carries the connect and join work; the presence grace a polling client's upgrade starts),
    // so that only the heartbeat is left for the window.
    const settleMs = Math.max(1.5 * IDLE.intervalMs, (defaults.PRESENCE_GRACE_MS?.value ?? 5000) + 1000) + 500;
    const idle = await cohort(server, path, 'idle', () => sleep(IDLE.rounds * IDLE.intervalMs).then(() => ({})), { settleMs });
    server.tail.stop();
    return { server: describe(server), quiet, idle, tail: server.tail };
  } finally {
    await stop(server);
  }
}

/** The review scenario's events, at the default heartbeat, each in its own cohort. */
async function measureEvents(path) {
  const server = await start(`cost-${path}`, { TYPING_TIMEOUT_MS: EVENTS.typingTimeoutMs, RECOVERY_WINDOW_MS: EVENTS.recoveryWindowMs });
  const tailMs = Math.max(EVENTS.recoveryWindowMs, 5000) + 2000;
  try {
    await warmUp(server, path);
    await sleep(tailMs); // the warm-up rooms' alarms run out
    // Objects whose stats lines name no room or session (the gateway's recovery records, as
    // `record_stats`) are counted by time, to the cohort that was running: then each cohort
    // waits for its records' last alarm (the recovery window after its members left) before the next.
    const byTime = server.tail.lines.some((l) => l.evt.endsWith('_stats') && !KNOWN_STATS.has(l.evt));
    const gapAfterMs = byTime ? EVENTS.recoveryWindowMs + 2000 : 0;
    const quietStart = await quietWindow(server);
    const healthz = await healthzCpu(server);
    say(`${path}: sessions (connect, join, leave)`);
    // Held until what setting up its connections started has run (the presence grace a polling
    // client's upgrade starts), as in every other cohort before its members leave.
    const holdMs = (defaults.PRESENCE_GRACE_MS?.value ?? 5000) + 1500;
    const session = await cohort(server, path, 'session', () => sleep(holdMs).then(() => ({})), { gapAfterMs });
    say(`${path}: messages (${MESSAGES_PER_ROOM} per room)`);
    const message = await cohort(server, path, 'message', messageEvents, { gapAfterMs });
    say(`${path}: typing then a message (${CYCLES_PER_ROOM} per room)`);
    const cycle = await cohort(server, path, 'cycle', cycleEvents, { gapAfterMs });
    say(`${path}: reconnects (each member once)`);
    const reconnect = await cohort(server, path, 'reconnect', reconnectEvents);
    // What the rooms do after everyone left (presence grace, pruning) is theirs too: wait for it.
    await sleep(tailMs);
    await quietLog(server.tail);
    const quietEnd = await quietWindow(server);
    server.tail.stop();
    return { server: describe(server), quietStart, quietEnd, healthz, cohorts: { session, message, cycle, reconnect }, tail: server.tail };
  } finally {
    await stop(server);
  }
}

// ---- attribution ----------------------------------------------------------------------------------

const sub = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, a[k] - (b[k] ?? 0)]));
const add = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, a[k] + (b[k] ?? 0)]));
const scale = (a, f) => Object.fromEntries(Object.keys(a).map((k) => [k, a[k] * f]));
const bgRate = (w) => w.cpuUs / w.ms; // µs of CPU per ms

/** The idle scenario: units per heartbeat round (per room), from the lines of the idle rooms inside the window. */
function attributeIdle(run) {
  const { idle, quiet, tail } = run;
  const { t0, t1 } = idle.cpu;
  const keys = new Set(idle.rooms.map((r) => String(r.pullRequestId)));
  const sids = new Set(idle.rooms.flatMap((r) => r.sids));
  const units = zeroOf(DO_FIELDS);
  let lines = 0;
  for (const l of tail.of('room_stats', { from: t0, to: t1 })) if (keys.has(String(l.line.pr))) { addInto(units, l.line, DO_FIELDS); lines++; }
  for (const l of tail.of('polling_stats', { from: t0, to: t1 })) if (sids.has(l.line.sid)) { addInto(units, l.line, DO_FIELDS); lines++; }
  const rounds = idle.rooms.reduce((s, r) => s + r.rounds(t0, t1, IDLE.intervalMs), 0);
  const pings = idle.rooms.reduce((s, r) => s + r.pings(t0, t1), 0);
  const requests = idle.rooms.reduce((s, r) => s + r.requests(t0, t1), 0);
  const causedUs = idle.cpu.cpuUs - bgRate(quiet) * idle.cpu.ms;
  return {
    perRound: scale(units, rounds > 0 ? 1 / rounds : 0),
    roundsPerRoom: rounds / Math.max(1, idle.rooms.length),
    linesInWindow: lines,
    windowS: (t1 - t0) / 1000,
    // Server CPU per ping a client got (its pong included), above the server's background.
    cpuPerPingMs: pings > 0 ? causedUs / pings / 1000 : 0,
    requestsPerRound: rounds > 0 ? requests / rounds : 0,
    bgPctOfCore: bgRate(quiet) / 10,
  };
}

/**
 * Rooms whose alarm stopped: every room sets one when its members leave (presence grace, pruning),
 * so a room with no alarm line after its `empty` line lost it, and with it whatever its alarm
 * would have done and cost. They are left out of the averages (and reported).
 */
function roomsWithoutAlarm(tail, rooms) {
  const byRoom = new Map(rooms.map((r) => [String(r.pullRequestId), []]));
  for (const l of tail.of('room_stats')) byRoom.get(String(l.line.pr))?.push(l.line.why);
  const lost = [];
  for (const [pr, whys] of byRoom) {
    const empty = whys.lastIndexOf('empty');
    if (empty !== -1 && !whys.slice(empty + 1).includes('alarm')) lost.push(pr);
  }
  return lost;
}

const KNOWN_STATS = new Set(['room_stats', 'polling_stats', 'connection_stats']);

/** Per room of a cohort: its rooms' lines, its sessions' polling lines, its connections' Worker lines. */
function cohortTotals(tail, c) {
  const keys = new Set(c.rooms.map((r) => String(r.pullRequestId)));
  const sids = new Set(c.rooms.flatMap((r) => r.sids));
  const room = zeroOf(DO_FIELDS), polling = zeroOf(DO_FIELDS), worker = zeroOf(WORKER_FIELDS), other = zeroOf(DO_FIELDS);
  // The rooms up to their members' leaving (their `empty` line included), without what their
  // alarm does afterwards: how many alarms a room's departures take depends on how many
  // milliseconds apart its members' sockets closed, noise that events are compared without.
  const roomToLeave = zeroOf(DO_FIELDS);
  const lastEmpty = new Map();
  tail.lines.forEach(({ evt, line }, i) => { if (evt === 'room_stats' && line.why === 'empty' && keys.has(String(line.pr))) lastEmpty.set(String(line.pr), i); });
  const lines = { room: 0, polling: 0, connection: 0, other: 0 };
  for (const [i, { evt, line, at }] of tail.lines.entries()) {
    if (evt === 'room_stats') {
      if (!keys.has(String(line.pr))) continue;
      addInto(room, line, DO_FIELDS);
      lines.room++;
      if (i <= (lastEmpty.get(String(line.pr)) ?? Infinity)) addInto(roomToLeave, line, DO_FIELDS);
    }
    else if (evt === 'polling_stats') { if (sids.has(line.sid)) { addInto(polling, line, DO_FIELDS); lines.polling++; } }
    else if (evt === 'connection_stats') { if (sids.has(line.sid)) { addInto(worker, line, WORKER_FIELDS); lines.connection++; } }
    // Stats of objects that name no room or session (recovery records): by time, to the cohort that was running.
    else if (evt.endsWith('_stats') && !KNOWN_STATS.has(evt) && at >= c.startedAt && at < c.nextStartedAt) { addInto(other, line, DO_FIELDS); lines.other++; }
  }
  const n = Math.max(1, c.rooms.length);
  const per = (o) => scale(o, 1 / n);
  // Lines counted by time cover every room of the cohort, the ones left out too.
  const perAll = (o) => scale(o, 1 / Math.max(1, (c.allRooms ?? c.rooms).length));
  return {
    room: per(room), roomToLeave: per(roomToLeave), polling: per(polling), worker: per(worker), other: perAll(other), lines,
    rounds: c.rooms.reduce((s, r) => s + r.rounds(-Infinity, Infinity, 0), 0) / n,
    clientRequests: c.rooms.reduce((s, r) => s + r.requests(), 0) / n,
  };
}

/** The review's events for one path: each cohort per room, less its heartbeat rounds, less a session; per event. */
function attributeEvents(run, idle) {
  const { cohorts, tail } = run;
  const list = Object.values(cohorts);
  list.forEach((c, i) => (c.nextStartedAt = list[i + 1]?.startedAt ?? Infinity));
  const alarmLost = {};
  for (const c of list) {
    const lost = new Set(roomsWithoutAlarm(tail, c.rooms));
    if (lost.size) {
      alarmLost[c.name] = [...lost];
      c.allRooms = c.rooms;
      c.rooms = c.rooms.filter((r) => !lost.has(String(r.pullRequestId)));
    }
  }
  const bg = Math.min(bgRate(run.quietStart), bgRate(run.quietEnd));
  const caused = (w) => w.cpuUs - bg * w.ms;
  const totals = Object.fromEntries(list.map((c) => [c.name, cohortTotals(tail, c)]));
  // A polling session's object cannot hibernate while it serves the session; if its lines say
  // it was never awake (a meter that loses the time), the clients' view stands in: each session's
  // time from its open to its upgrade, for the sessions the events opened (not a difference of
  // cohorts: how long an upgrade takes varies with how busy the clients were).
  const pollingAwakeMissing = Object.values(totals).some((t) => t.lines.polling > 0) && Object.values(totals).every((t) => t.polling.awakeMs === 0);
  const clientPollingMs = (c, from, to) => (c.allRooms ?? c.rooms).reduce((s, r) => s + r.pollingMs(from, to), 0);
  // Events are compared up to the leaving; a session is all of its rooms' life.
  const net = (name, { whole = false, connections = true } = {}) => {
    const t = totals[name];
    return {
      units: sub(connections ? add(add(whole ? t.room : t.roomToLeave, t.polling), t.other) : whole ? t.room : t.roomToLeave, scale(idle.perRound, t.rounds)),
      workerRequests: t.lines.connection > 0 ? t.worker.workerRequests + t.worker.requests : t.clientRequests,
      frames: t.worker.framesIn + t.worker.framesOut,
      workerCpuMsInCode: t.worker.workerCpuMs,
    };
  };
  const session = net('session');
  const wholeSession = net('session', { whole: true });
  // What a connection's setup costs varies from one to the next (how many polls before the
  // upgrade, how many calls its recovery record gets): it is compared only where the events make
  // connections (reconnects). For messages and typing, the polling sessions and the records are
  // left out of both sides (neither sees a message), and Worker requests are the ones the clients
  // made during the events (none, unless one was dropped).
  const perEvent = (name, count, { connects = false } = {}) => {
    const n = net(name, { connections: connects });
    const base = connects ? session : net('session', { connections: false });
    const c = cohorts[name];
    const rooms = c.allRooms ?? c.rooms;
    const windowRequests = rooms.reduce((s, r) => s + r.requests(c.cpu.t0, c.cpu.t1), 0) / Math.max(1, count);
    const pings = (c.allRooms ?? c.rooms).reduce((s, r) => s + r.pings(c.cpu.t0, c.cpu.t1), 0);
    // The events of the rooms counted (the ones whose alarm kept working), per room.
    const perRoom = Math.max(1, count * (c.rooms.length / (c.allRooms ?? c.rooms).length)) / Math.max(1, c.rooms.length);
    const units = scale(sub(n.units, base.units), 1 / perRoom);
    if (pollingAwakeMissing && connects) units.awakeMs += clientPollingMs(c, c.cpu.t0, c.cpu.t1) / Math.max(1, count);
    return {
      count,
      units,
      workerRequests: connects ? (n.workerRequests - session.workerRequests) / perRoom : windowRequests,
      workerCpuMsInCode: (n.workerCpuMsInCode - session.workerCpuMsInCode) / perRoom,
      workerFrames: (n.frames - session.frames) / perRoom,
      // Server CPU the events caused: the window less the background and the heartbeat's pings.
      serverCpuMs: (caused(c.cpu) - idle.cpuPerPingMs * 1000 * pings) / 1000 / Math.max(1, count),
    };
  };
  return {
    alarmLost,
    pollingAwakeFromClients: pollingAwakeMissing,
    bgPctOfCore: bg / 10,
    perRequestCpuMs: caused(run.healthz) / HEALTHZ_REQUESTS / 1000,
    session,
    events: {
      // A room's session: its 5 members connect and join, and leave (once a room-day in the fleet).
      session: {
        count: cohorts.session.rooms.length,
        units: pollingAwakeMissing
          ? { ...wholeSession.units, awakeMs: wholeSession.units.awakeMs + clientPollingMs(cohorts.session) / Math.max(1, (cohorts.session.allRooms ?? cohorts.session.rooms).length) }
          : wholeSession.units,
        workerRequests: session.workerRequests,
        workerCpuMsInCode: session.workerCpuMsInCode,
        workerFrames: session.frames,
        serverCpuMs: caused(cohorts.session.cpuAll) / 1000 / Math.max(1, (cohorts.session.allRooms ?? cohorts.session.rooms).length),
      },
      message: perEvent('message', cohorts.message.counts.messages),
      cycle: perEvent('cycle', cohorts.cycle.counts.cycles),
      reconnect: perEvent('reconnect', cohorts.reconnect.counts.reconnects, { connects: true }),
    },
    cohorts: totals,
  };
}

/**
 * Worker CPU. Idle: on the gateway and polling paths the rooms sleep and every ping is the
 * Worker's, so all the CPU the idle clients caused is the Worker's; on the direct path the Worker
 * does nothing. Events on the direct path: the Worker only answers upgrades, at the CPU of a
 * GET /healthz each. Events on the gateway and polling paths, where the Worker and the rooms run
 * in one process: billed at the upper bound, all the server CPU the events caused (the rooms'
 * share included, which Cloudflare bills as duration instead); the lower bound beside it is that
 * less the direct path's CPU for the same events (which leaves out the protocol work the Worker
 * does there and the room does on the direct path). Never below the path's Worker requests at
 * the per-request CPU.
 */
function workerCpu(measured) {
  const direct = measured.direct;
  for (const [path, m] of Object.entries(measured)) {
    m.idle.workerCpuMsPerRound = path === 'direct' ? 0 : m.idle.cpuPerPingMs * MEMBERS;
    m.workerCpu = {};
    for (const [name, e] of Object.entries(m.events)) {
      const floor = m.perRequestCpuMs * Math.max(0, e.workerRequests);
      if (path === 'direct') {
        m.workerCpu[name] = { ms: floor, lowMs: floor, how: 'Worker requests x per-request CPU' };
        continue;
      }
      const d = direct?.events[name];
      const low = d ? e.serverCpuMs - d.serverCpuMs + direct.perRequestCpuMs * Math.max(0, d.workerRequests) : null;
      m.workerCpu[name] = {
        ms: Math.max(e.serverCpuMs, floor),
        lowMs: low === null ? null : Math.max(low, floor),
        how: 'upper bound: all server CPU the events caused (rooms included); lowMs: less the direct path\'s',
      };
    }
    // Per unit the Worker's own estimate (connection_stats' workerCpuMs) charges: per HTTP request,
    // and per frame (an idle ping and its pong are two frames, and the rooms sleep meanwhile).
    m.workerCpuPerUnit = {
      requestMs: m.perRequestCpuMs,
      frameMs: path === 'direct' ? null : m.idle.cpuPerPingMs / 2,
    };
  }
}

function checks(events, idleRun) {
  const problems = [];
  const all = { idle: idleRun.idle, ...events.cohorts };
  for (const [name, c] of Object.entries(all)) {
    const rooms = c.allRooms ?? c.rooms;
    if (c.failed.length) problems.push(`${name}: ${c.failed.length} room(s) failed to connect (${c.failed[0].error})`);
    // Connections beyond the ones each cohort makes (every member once; the reconnect cohort
    // twice): clients the server or their own ping timer dropped. Their cost lands in the cohort.
    const expected = rooms.length * MEMBERS * (name === 'reconnect' ? 2 : 1);
    const made = rooms.reduce((n, r) => n + r.members.reduce((k, m) => k + m.connects, 0), 0);
    if (made > expected) problems.push(`${name}: ${made - expected} unplanned reconnect(s): that cohort's units are overstated`);
    const timeouts = rooms.reduce((n, r) => n + r.deliveryTimeouts, 0);
    if (timeouts) problems.push(`${name}: ${timeouts} message(s) not delivered to every member within 10 s`);
    const errors = rooms.flatMap((r) => r.errors);
    if (errors.length) problems.push(`${name}: ${errors.length} pr-room-error(s), e.g. ${JSON.stringify(errors[0])}`);
  }
  const rc = events.cohorts.reconnect.counts;
  const want = (events.cohorts.reconnect.allRooms ?? events.cohorts.reconnect.rooms).length * MEMBERS;
  if (rc.reconnects < want) problems.push(`only ${rc.reconnects} of ${want} reconnects completed`);
  if (rc.recovered < rc.reconnects) problems.push(`${rc.reconnects - rc.recovered} reconnect(s) not recovered`);
  return { problems, reconnects: rc.reconnects, recovered: rc.recovered, messages: events.cohorts.message.counts.messages, cycles: events.cohorts.cycle.counts.cycles };
}

// ---- run ------------------------------------------------------------------------------------------

const started = Date.now();
say(`paths=${paths.join(',')} rooms=${ROOMS}x${MEMBERS}; idle: heartbeat ${IDLE.intervalMs} ms, scaled to the defaults (gateway ${defaults.PING_INTERVAL_MS.value} ms, direct ${defaults.DIRECT_PING_INTERVAL_MS.value} ms); ${pin === null ? 'not pinned' : 'servers pinned to core 0'}`);

// The idle servers run side by side (little load; CPU is read per process), the events servers one after another.
say(`idle: ${paths.join(', ')} side by side (${IDLE.rounds} rounds of ${IDLE.intervalMs} ms)`);
const idleRuns = Object.fromEntries(await Promise.all(paths.map(async (path) => {
  try {
    return [path, await measureIdle(path)];
  } catch (err) {
    say(`${path}: idle failed: ${String(err.message ?? err).split('\n')[0]}`);
    return [path, null];
  }
})));
const eventRuns = {};
for (const path of paths) {
  if (!idleRuns[path]) continue;
  try {
    eventRuns[path] = await measureEvents(path);
  } catch (err) {
    say(`${path}: events failed: ${String(err.message ?? err).split('\n')[0]}`);
  }
}

const measured = {};
const warnings = [];
for (const path of paths) {
  const ir = idleRuns[path], er = eventRuns[path];
  if (!ir || !er) continue;
  const idle = attributeIdle(ir);
  measured[path] = { idle, ...attributeEvents(er, idle) };
  const cov = { idle: meterCoverage(ir.tail), events: meterCoverage(er.tail) };
  measured[path].meters = cov;
  measured[path].servers = { idle: ir.server, events: er.server };
  measured[path].checks = checks(er, ir);
  if (cov.events.roomStatsMetered === 0) warnings.push(`${path}: no metered room_stats lines (no doRequests field): the server's meters are missing, its Durable Object units read as 0`);
  if (path === 'polling' && cov.events.pollingStats === 0) warnings.push('polling: no polling_stats lines: the polling sessions\' objects are not in the bill');
  // The direct path's Worker only hands the upgrade to the room: no connection line is expected there.
  if (path !== 'direct' && cov.events.connectionStats === 0) warnings.push(`${path}: no connection_stats lines: Worker requests are the clients' own count`);
  for (const s of [ir.server, er.server]) if (s.reloads) warnings.push(`${path}: ${s.log} reloaded the worker ${s.reloads}x (sources changed): INVALID`);
  for (const w of measured[path].checks.problems) warnings.push(`${path}: ${w}`);
  if (measured[path].pollingAwakeFromClients) warnings.push(`${path}: every polling_stats line says awakeMs 0: the sessions' duration is the clients' (open to upgrade)`);
  for (const [name, prs] of Object.entries(measured[path].alarmLost)) warnings.push(`${path}/${name}: ${prs.length} room(s) lost their alarm (no alarm after everyone left; left out): ${prs.join(', ')}`);
}
workerCpu(measured);

const out = { prices, paths: {}, fleet: {} };
for (const [path, m] of Object.entries(measured)) {
  const hour = perRoomHour(m, { roundsPerHour: 3_600_000 / defaultIntervalMs(path), prices });
  out.paths[path] = { idle: hour.idle, review: hour.review };
  out.fleet[path] = hour.fleetUsdPerMonth;
  m.perEventUnits = hour.perEvent;
  m.fleetRoomHour = hour.fleetRoomHour;
}
out.details = {
  startedAt: new Date(started).toISOString(),
  durationS: Math.round((Date.now() - started) / 1000),
  fleet: FLEET,
  review: REVIEW,
  defaults,
  run: { rooms: ROOMS, members: MEMBERS, idle: IDLE, events: EVENTS, messagesPerRoom: MESSAGES_PER_ROOM, cyclesPerRoom: CYCLES_PER_ROOM, pinned: pin !== null, cores: availableParallelism(), node: process.version },
  warnings,
  measured,
};
writeFileSync(join(resultsDir, 'cost.json'), JSON.stringify(out, roundReplacer, 2) + '\n');
console.log(formatReport(out, measured));
if (warnings.length) console.log(`\nwarnings:\n${warnings.map((w) => `  - ${w}`).join('\n')}`);
console.log(`\nwritten bench/results/cost.json; server logs in bench/results/logs/cost-*.log (${out.details.durationS} s)`);
process.exit(Object.keys(measured).length === paths.length ? 0 : 1);

function roundReplacer(_k, v) {
  if (typeof v !== 'number' || Number.isInteger(v)) return v;
  if (Math.abs(v) >= 100) return Math.round(v * 100) / 100;
  return Number(v.toPrecision(4));
}
