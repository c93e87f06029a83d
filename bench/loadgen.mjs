// Load generator against one server. Over WebSocket the load is driven by a light raw
// Engine.IO/Socket.IO client (lib/raw-client.mjs), so that the server saturates before the client
// does; socket.io-client drives long-polling (--transport polling and s1p), --drain=complete (it
// needs socket.io-client's reconnection and recovery) and --client socketio.
//
//   node bench/loadgen.mjs --url http://127.0.0.1:8787 --scenario s1|s1p|s2|s3|connect [--quick]
//        [--query "room={room}"] [--clients N] [--rooms N] [--duration S] [--rate N] [--window N]
//        [--connect-concurrency N] [--transport websocket|polling] [--client raw|socketio]
//        [--deflate on|off]
//
// stdout is JSON lines: {"event":"phase",...} as the run moves on (bench/run.mjs samples server CPU
// and memory at those moments) and finally {"event":"result",...}. Logs go to stderr.
// Each message's text is JSON {c: sender, q: seq, t: send time}, so receivers measure latency and
// detect lost, duplicated and out-of-order messages per (receiver, sender) pair.
import { io } from 'socket.io-client';
import { parseArgs } from './lib/args.mjs';
import { Histogram } from './lib/histogram.mjs';
import { RawSocket, rawUrl, readDelivery } from './lib/raw-client.mjs';

const SCENARIOS = {
  // 100 rooms of 10, 1 msg/s per client: 1,000 msgs/s in, 10,000 deliveries/s out.
  s1: { clients: 1000, rooms: 100, mode: 'rate', rate: 1, duration: 20, quickDuration: 6 },
  // One big room: 200 msgs/s in, 40,000 deliveries/s out.
  s2: { clients: 200, rooms: 1, mode: 'rate', rate: 1, duration: 20, quickDuration: 5 },
  // Saturation: every client keeps `window` messages awaiting their ack.
  s3: { clients: 100, rooms: 10, mode: 'window', window: 4, duration: 15, quickDuration: 5 },
  // s1's rooms of 10 at 1 msg/s per client, over HTTP long-polling (transports: ['polling']):
  // 20 rooms, 200 msgs/s in, 2,000 deliveries/s out. Fewer clients than s1: each one is a
  // held GET plus a POST per message, and on our side a Durable Object per session.
  s1p: { clients: 200, rooms: 20, mode: 'rate', rate: 1, duration: 20, quickDuration: 6, transport: 'polling' },
  // Connection setup only (connect + join).
  connect: { clients: 1000, rooms: 100, mode: 'none', duration: 0, quickDuration: 0 },
};

const args = parseArgs();
const CONNECT_TIMEOUT_MS = 20_000; // per client: connect + join ack
const CONNECT_PHASE_CAP_MS = 90_000; // all clients
const ACK_TIMEOUT_MS = 10_000;
// After sending stops, keep receiving while deliveries still arrive (an overloaded server is late,
// not lossy); give up after DRAIN_IDLE_MS without progress or DRAIN_CAP_MS in all. "lost" is what
// a member of the room never got by then of what it is owed (see lostCount). With
// --drain=complete the drain waits for every delivery (10 min at most, 15 s without progress):
// then "lost" is loss, not backlog.
const DRAIN_COMPLETE = args.drain === 'complete';
const DRAIN_IDLE_MS = DRAIN_COMPLETE ? 15_000 : 3_000;
const DRAIN_CAP_MS = DRAIN_COMPLETE ? 600_000 : args.quick ? 10_000 : 20_000;

const scenarioName = String(args.scenario ?? 's1');
const base = SCENARIOS[scenarioName];
if (!base) fail(`unknown scenario ${scenarioName}`);
const cfg = {
  ...base,
  clients: Number(args.clients ?? base.clients),
  rooms: Number(args.rooms ?? base.rooms),
  duration: Number(args.duration ?? (args.quick ? base.quickDuration : base.duration)),
  rate: Number(args.rate ?? base.rate ?? 0),
  window: Number(args.window ?? base.window ?? 0),
  concurrency: Number(args['connect-concurrency'] ?? 50),
  transport: String(args.transport ?? base.transport ?? 'websocket'),
};
if (cfg.transport !== 'websocket' && cfg.transport !== 'polling') fail(`unknown transport ${cfg.transport}`);
if (args.client !== undefined && args.client !== 'raw' && args.client !== 'socketio') fail(`unknown client ${args.client}`);
// The raw client speaks WebSocket only and does not reconnect: the rest is socket.io-client's.
const clientKind = cfg.transport === 'polling' || DRAIN_COMPLETE || args.client === 'socketio' ? 'socketio' : 'raw';
// permessage-deflate only with --deflate on (socket.io-client's and browsers' default): workerd
// then deflates every frame it sends and the reference does not, and the client pays to inflate
// each (see lib/raw-client.mjs). Off, every server does the same work per frame.
const deflate = args.deflate === 'on';
const url = String(args.url ?? 'http://127.0.0.1:8787');
const queryTemplate = typeof args.query === 'string' ? args.query : '';

// Hard cap on the whole process, whatever the server does.
const hardCapMs = CONNECT_PHASE_CAP_MS + cfg.duration * 1000 + DRAIN_CAP_MS + ACK_TIMEOUT_MS + 15_000;
const watchdog = setTimeout(() => finish('watchdog: hard time cap reached', 2), hardCapMs);

const now = () => performance.timeOrigin + performance.now(); // epoch ms, sub-ms precision
function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}
const log = (...a) => console.error(`[loadgen ${scenarioName}]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function fail(msg) {
  emit({ event: 'result', error: msg });
  process.exit(1);
}

// Room ids from a random base so a run never meets a room left over from an earlier one.
const prBase = (1 + Math.floor(Math.random() * 899_999)) * 1000;
const clients = Array.from({ length: cfg.clients }, (_, i) => ({
  i,
  username: `lg${i}`,
  pullRequestId: prBase + (i % cfg.rooms),
  socket: null,
  joined: false,
  sent: 0, // next seq to use == messages sent
  /** Seqs of this client's messages the server accepted (an ok ack): what every member is owed. */
  accepted: new Set(),
  /** The room's seq of each of this client's messages (by its own seq q), from its ack or any delivery. */
  roomSeq: [],
  /** The room seq of the newest message this client got. */
  newestSeq: 0,
  /**
   * With --drain=complete: spans of room seqs this client was told it missed, (after, upTo]:
   * it came back as a fresh connection, so what the room numbered after the newest message it
   * had got, up to the room's head when its join was answered again, is not owed.
   */
  excused: [],
  inFlight: 0,
  // sender index -> { next: expected seq, missing: Set of skipped seqs not seen yet }
  from: new Map(),
}));

const stats = {
  connect: { attempted: 0, joined: 0, failed: 0, errors: {}, latency: new Histogram(), seconds: 0 },
  sent: 0, acked: 0, ackErrors: {}, ackTimeouts: 0, ackLatency: new Histogram(),
  delivered: 0, deliveredInWindow: 0, expected: 0, latency: new Histogram(),
  duplicated: 0, outOfOrder: 0, malformed: 0, foreign: 0,
  disconnects: 0, disconnectReasons: {}, recovered: 0, fresh: 0,
  notConnectedSkips: 0,
};
const tally = (obj, key) => { obj[key] = (obj[key] ?? 0) + 1; };
let win = { start: Infinity, end: Infinity };

// The server's extra query for this client's room (e.g. "room=123" for the floor).
const queryString = (c) => queryTemplate.replaceAll('{room}', String(c.pullRequestId));

function queryFor(c) {
  return queryTemplate ? Object.fromEntries(new URLSearchParams(queryString(c))) : undefined;
}

/**
 * A received message as the checks need it: { pullRequestId, username, c, q, t, seq } (c, q, t
 * from the loadgen's own message text), or 'malformed' / 'foreign'. The raw client reads these
 * in place from the frame (readDelivery); this is the same from socket.io-client's decoded object.
 */
function deliveryOf(m) {
  if (!m || typeof m.id !== 'string' || typeof m.sentAt !== 'number' || typeof m.message !== 'string') return 'malformed';
  let body;
  try { body = JSON.parse(m.message); } catch { return 'foreign'; }
  if (body === null || typeof body !== 'object') return 'foreign';
  return { pullRequestId: m.pullRequestId, username: m.username, c: body.c, q: body.q, t: body.t, seq: m.seq };
}

function onDelivery(c, d) {
  const t = now();
  if (d === 'malformed' || (d !== 'foreign' && d.pullRequestId !== c.pullRequestId)) { stats.malformed++; return; }
  const sender = d === 'foreign' ? undefined : clients[d.c];
  if (!sender || sender.username !== d.username) { stats.foreign++; return; }
  stats.delivered++;
  if (t >= win.start && t <= win.end) stats.deliveredInWindow++;
  stats.latency.record(t - d.t);
  if (typeof d.seq === 'number') {
    sender.roomSeq[d.q] = d.seq;
    if (d.seq > c.newestSeq) c.newestSeq = d.seq;
  }
  let track = c.from.get(d.c);
  if (!track) c.from.set(d.c, (track = { next: 0, missing: new Set() }));
  const q = d.q;
  if (q === track.next) track.next++;
  else if (q > track.next) {
    for (let s = track.next; s < q; s++) track.missing.add(s);
    track.next = q + 1;
  } else if (track.missing.delete(q)) stats.outOfOrder++;
  else stats.duplicated++;
}

/**
 * One client's connection, either kind, as { connected, recovered, emit(event, payload,
 * timeoutMs, cb), close() }; `h` gets onConnect (again after a reconnect), onConnectError(reason),
 * onDisconnect(reason) and onDelivery(delivery).
 */
function openSocketIo(c, h) {
  const socket = io(url, {
    transports: [cfg.transport],
    forceNew: true, // one engine per client, as real browsers would have
    // A dropped client must show up as loss, not be papered over; with --drain=complete it
    // comes back as a real client does, recovered (owing nothing) or fresh (told, re-joined).
    reconnection: DRAIN_COMPLETE,
    timeout: CONNECT_TIMEOUT_MS,
    query: queryFor(c),
    perMessageDeflate: deflate ? { threshold: 1024 } : false,
  });
  socket.on('pr-room-message', (m) => h.onDelivery(deliveryOf(m)));
  socket.on('connect_error', (e) => h.onConnectError(`connect_error: ${e.message}`));
  socket.on('disconnect', (reason) => {
    if (reason !== 'io client disconnect') h.onDisconnect(reason); // not our own close at the end
  });
  socket.on('connect', () => h.onConnect());
  return {
    get connected() { return socket.connected; },
    get recovered() { return socket.recovered; },
    emit: (event, payload, timeoutMs, cb) => socket.timeout(timeoutMs).emit(event, payload, cb),
    close: () => socket.disconnect(),
  };
}

function openRaw(c, h) {
  return new RawSocket(rawUrl(url, queryString(c)), {
    onConnect: h.onConnect,
    onConnectError: h.onConnectError,
    onDisconnect: h.onDisconnect,
    onMessage: (frame) => h.onDelivery(readDelivery(frame)),
  }, { deflate });
}

function connectOne(c) {
  return new Promise((resolve) => {
    const t0 = now();
    let settled = false;
    const done = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        stats.connect.failed++;
        tally(stats.connect.errors, err);
        // Left open, it could still connect and join later, receiving what nobody counts it for.
        c.socket?.close();
      } else {
        c.joined = true;
        stats.connect.joined++;
        stats.connect.latency.record(now() - t0);
      }
      resolve();
    };
    const timer = setTimeout(() => done('timeout'), CONNECT_TIMEOUT_MS);
    const open = clientKind === 'raw' ? openRaw : openSocketIo;
    const socket = (c.socket = open(c, {
      onDelivery: (d) => onDelivery(c, d),
      onConnectError: (reason) => done(reason),
      onDisconnect: (reason) => {
        if (!settled) return done(`disconnect: ${reason}`);
        stats.disconnects++;
        tally(stats.disconnectReasons, reason);
      },
      onConnect: () => {
        if (settled) return rejoin(c, socket);
        socket.emit('join-pr-room', { pullRequestId: c.pullRequestId, username: c.username }, CONNECT_TIMEOUT_MS, (err, res) => {
          if (err) done('join ack timeout');
          else if (!res?.ok) done(`join rejected: ${res?.error?.code ?? JSON.stringify(res)}`);
          else done();
        });
      },
    }));
  });
}

/** A reconnect: recovered, it owes nothing more; fresh, it was told it missed what came meanwhile, and joins again. */
function rejoin(c, socket) {
  if (socket.recovered) return void stats.recovered++;
  stats.fresh++;
  // Until the join is answered (a join refused or unanswered leaves the client out of the room: owed nothing).
  const span = { after: c.newestSeq, upTo: Infinity, joining: true };
  c.excused.push(span);
  socket.emit('join-pr-room', { pullRequestId: c.pullRequestId, username: c.username }, CONNECT_TIMEOUT_MS, (err, res) => {
    span.joining = false;
    if (!err && res?.ok && typeof res.seq === 'number') span.upTo = res.seq;
  });
}

async function connectAll() {
  emit({ event: 'phase', phase: 'connecting', clients: cfg.clients });
  const t0 = now();
  let next = 0;
  // A fixed number of handshakes in flight staggers the opening burst without a fixed delay.
  const worker = async () => {
    while (next < clients.length && now() - t0 < CONNECT_PHASE_CAP_MS) {
      const c = clients[next++];
      stats.connect.attempted++;
      await connectOne(c);
    }
  };
  await Promise.all(Array.from({ length: Math.min(cfg.concurrency, clients.length) }, worker));
  stats.connect.seconds = (now() - t0) / 1000;
  emit({ event: 'phase', phase: 'connected', joined: stats.connect.joined, failed: stats.connect.failed });
  log(`connected ${stats.connect.joined}/${cfg.clients} in ${stats.connect.seconds.toFixed(2)} s`);
}

// Joined, still-connected members per room: how many deliveries one message should produce.
function roomSizes() {
  const sizes = new Map();
  for (const c of clients) if (c.joined) sizes.set(c.pullRequestId, (sizes.get(c.pullRequestId) ?? 0) + 1);
  return sizes;
}

function sendOne(c, sizes, onAck) {
  if (!c.socket.connected) {
    stats.notConnectedSkips++;
    return false;
  }
  const q = c.sent++;
  const accepted = c.accepted;
  const t = now();
  stats.sent++;
  stats.expected += sizes.get(c.pullRequestId) ?? 0;
  c.inFlight++;
  const message = JSON.stringify({ c: c.i, q, t });
  c.socket.emit('send-message-to-pr-room', { pullRequestId: c.pullRequestId, username: c.username, message }, ACK_TIMEOUT_MS, (err, res) => {
    c.inFlight--;
    if (err) stats.ackTimeouts++;
    else if (!res?.ok) tally(stats.ackErrors, res?.error?.code ?? 'bad_ack');
    else {
      accepted.add(q);
      if (typeof res.seq === 'number') c.roomSeq[q] = res.seq;
      stats.acked++;
      stats.ackLatency.record(now() - t);
    }
    onAck?.();
  });
  return true;
}

async function runLoad() {
  if (cfg.mode === 'none' || cfg.duration <= 0) return;
  const active = clients.filter((c) => c.joined);
  const sizes = roomSizes();
  const durationMs = cfg.duration * 1000;
  const cpu0 = process.cpuUsage();
  win = { start: now(), end: now() + durationMs };
  emit({ event: 'phase', phase: 'measure-start' });

  if (cfg.mode === 'rate') {
    // Each client sends every `period` ms from a random phase, so load is smooth rather than a
    // once-a-second burst; deadlines are absolute so timer drift does not lower the rate.
    const period = 1000 / cfg.rate;
    for (const c of active) {
      const phase = Math.random() * period;
      let k = 0;
      const tick = () => {
        const due = win.start + phase + k * period;
        if (due >= win.end) return;
        k++;
        sendOne(c, sizes);
        setTimeout(tick, Math.max(0, win.start + phase + k * period - now()));
      };
      setTimeout(tick, phase);
    }
  } else if (cfg.mode === 'window') {
    const pump = (c) => {
      while (c.inFlight < cfg.window && now() < win.end) {
        if (!sendOne(c, sizes, () => pump(c))) return;
      }
    };
    active.forEach(pump);
  }

  await sleep(durationMs);
  emit({ event: 'phase', phase: 'measure-end' });
  const cpu = process.cpuUsage(cpu0);
  const pct = (us) => Math.round((us / 1000 / durationMs) * 100);
  stats.loadgenCpuPct = pct(cpu.user + cpu.system);
  // The kernel's share (socket reads and writes) is what no client code can save.
  stats.loadgenCpuSystemPct = pct(cpu.system);
  // Per delivery: the client's cost whatever the throughput, to compare clients.
  if (stats.deliveredInWindow > 0) stats.loadgenCpuUsPerMsg = (cpu.user + cpu.system) / stats.deliveredInWindow;

  const drainStart = now();
  let lastCount = -1, lastProgress = drainStart;
  stats.drainEndedBy = 'cap'; // 'cap' while deliveries still arrive means backlog, not (only) loss
  while (now() - drainStart < DRAIN_CAP_MS) {
    const inFlight = active.reduce((n, c) => n + c.inFlight, 0);
    if (inFlight === 0 && stats.delivered - stats.duplicated >= stats.expected) { stats.drainEndedBy = 'complete'; break; }
    const count = stats.delivered + stats.acked;
    // Waiting for every delivery includes waiting for every dropped client to be back (or the cap).
    const away = DRAIN_COMPLETE && clients.some((c) => c.joined && (!c.socket?.connected || c.excused.at(-1)?.joining));
    if (count !== lastCount || away) [lastCount, lastProgress] = [count, now()];
    if (now() - lastProgress >= DRAIN_IDLE_MS) { stats.drainEndedBy = 'idle'; break; }
    await sleep(50);
  }
  stats.drainS = (now() - drainStart) / 1000;
}

function lostCount() {
  // What a room owes its members: every message the server accepted (an ok ack), and every
  // message any member got (a send whose ack timed out may still have gone out: then all
  // must have it). Refused sends (rate_limited, ...) and ones nobody got are not owed.
  // Per (receiver, sender) pair in a room: each owed seq the receiver never saw.
  const seen = (track, q) => track !== undefined && q < track.next && !track.missing.has(q);
  let lost = 0;
  for (const s of clients) {
    if (!s.joined || s.sent === 0) continue;
    const members = clients.filter((r) => r.joined && r.pullRequestId === s.pullRequestId);
    for (let q = 0; q < s.sent; q++) {
      const got = members.filter((r) => seen(r.from.get(s.i), q)).length;
      if (got === 0 && !s.accepted.has(q)) continue;
      // A member that came back fresh was told it missed what was sent before it joined again.
      const seq = s.roomSeq[q];
      const excused = (r) => seq !== undefined && r.excused.some((span) => seq > span.after && seq <= span.upTo);
      lost += members.filter((r) => !seen(r.from.get(s.i), q) && !excused(r)).length;
    }
  }
  return lost;
}

let finished = false;
function finish(error, code = 0) {
  if (finished) return;
  finished = true;
  clearTimeout(watchdog);
  const durationS = cfg.duration;
  const c = stats.connect;
  const result = {
    event: 'result',
    scenario: scenarioName,
    client: clientKind,
    deflate,
    url,
    query: queryTemplate || null,
    clients: cfg.clients,
    rooms: cfg.rooms,
    mode: cfg.mode,
    rate: cfg.mode === 'rate' ? cfg.rate : undefined,
    window: cfg.mode === 'window' ? cfg.window : undefined,
    durationS,
    connect: {
      attempted: c.attempted, joined: c.joined, failed: c.failed, errors: c.errors,
      seconds: round(c.seconds), perSec: c.seconds > 0 ? round(c.joined / c.seconds) : null,
      latencyMs: c.latency.summary(),
    },
    sent: stats.sent,
    acked: stats.acked,
    ackErrors: stats.ackErrors,
    ackTimeouts: stats.ackTimeouts,
    ackLatencyMs: stats.ackLatency.summary(),
    expected: stats.expected,
    delivered: stats.delivered,
    deliveredInWindow: stats.deliveredInWindow,
    deliveredPerSec: durationS > 0 ? round(stats.deliveredInWindow / durationS) : null,
    latencyMs: stats.latency.summary(),
    lost: cfg.mode === 'none' ? 0 : lostCount(),
    duplicated: stats.duplicated,
    outOfOrder: stats.outOfOrder,
    malformed: stats.malformed,
    foreign: stats.foreign,
    disconnects: stats.disconnects,
    disconnectReasons: stats.disconnectReasons,
    reconnects: DRAIN_COMPLETE ? { recovered: stats.recovered, fresh: stats.fresh } : undefined,
    notConnectedSkips: stats.notConnectedSkips,
    drainS: stats.drainS !== undefined ? round(stats.drainS) : null,
    drainEndedBy: stats.drainEndedBy ?? null,
    loadgenCpuPct: stats.loadgenCpuPct ?? null,
    loadgenCpuSystemPct: stats.loadgenCpuSystemPct ?? null,
    loadgenCpuUsPerMsg: stats.loadgenCpuUsPerMsg !== undefined ? round(stats.loadgenCpuUsPerMsg) : null,
    error: error ?? null,
  };
  for (const cl of clients) cl.socket?.close();
  emit(result);
  // Give the close frames a moment to leave, then exit even if a handle lingers.
  setTimeout(() => process.exit(code), 300).unref();
}

function round(v) {
  return Math.round(v * 100) / 100;
}

try {
  log(`url=${url} client=${clientKind} clients=${cfg.clients} rooms=${cfg.rooms} mode=${cfg.mode} duration=${cfg.duration}s`);
  await connectAll();
  if (stats.connect.joined === 0) finish('no client could connect and join', 1);
  else {
    await runLoad();
    finish(null);
  }
} catch (err) {
  finish(`loadgen crashed: ${err?.stack ?? err}`, 1);
}
