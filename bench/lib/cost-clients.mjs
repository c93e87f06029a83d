// The clients of bench/cost.mjs: rooms of socket.io-client members that behave as the API
// contract's client does (join on every `connect`, emit without acks), on one of three paths:
//   gateway  io(url, { transports: ['websocket'] })                         the contract's client
//   direct   io(url, { transports: ['websocket'], query: { pullRequestId } }) the room holds the socket
//   polling  io(url)                                                          default options: polls, then upgrades
// Each member records what the cost model needs from the client side: its Engine.IO session ids
// (to find its `connection_stats` / `polling_stats` lines), the pings it got (heartbeat rounds),
// and the HTTP requests it made to the Worker (a WebSocket upgrade is one; each polling GET and POST is one).
import { io } from 'socket.io-client';

export const PATHS = ['gateway', 'direct', 'polling'];

const CONNECT_TIMEOUT_MS = 20_000;
const UPGRADE_TIMEOUT_MS = 10_000;
const DELIVERY_TIMEOUT_MS = 10_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function ioOptions(path, pullRequestId) {
  // forceNew: one engine per member, as separate browsers would have. Reconnection stays on
  // (socket.io-client's default): the reconnect events rely on it.
  if (path === 'gateway') return { transports: ['websocket'], forceNew: true, timeout: CONNECT_TIMEOUT_MS };
  if (path === 'direct') return { transports: ['websocket'], forceNew: true, timeout: CONNECT_TIMEOUT_MS, query: { pullRequestId: String(pullRequestId) } };
  if (path === 'polling') return { forceNew: true, timeout: CONNECT_TIMEOUT_MS };
  throw new Error(`unknown path ${path}`);
}

export class Member {
  constructor(room, index) {
    this.room = room;
    this.username = `rev${index}`;
    this.socket = null;
    /** Engine.IO session ids, one per connection this member made. */
    this.sids = [];
    /** Epoch ms of every ping the server sent this member. */
    this.pings = [];
    /** HTTP requests this member made to the Worker, with their times. */
    this.requests = [];
    this.connects = 0;
    /** Polling sessions, { openedAt, ms }: from the session's open to its upgrade (its object cannot hibernate meanwhile). */
    this.pollingSessions = [];
    this.recovered = 0;
    this.joinRefusals = 0;
    this.joinWaiters = [];
    this.upgradeWaiters = [];
    this.received = new Set();
  }

  get ref() {
    return { pullRequestId: this.room.pullRequestId, username: this.username };
  }

  get upgraded() {
    return this.socket?.io.engine?.transport?.name === 'websocket';
  }

  request(n = 1) {
    const at = Date.now();
    for (let i = 0; i < n; i++) this.requests.push(at);
  }

  /** Connects and joins; resolves once the join is answered (rejects on failure). */
  connect(url) {
    const socket = io(url, ioOptions(this.room.path, this.room.pullRequestId));
    this.socket = socket;
    const manager = socket.io;
    manager.on('ping', () => this.pings.push(Date.now()));
    manager.on('open', () => {
      const engine = manager.engine;
      this.sids.push(engine.id);
      const transport = engine.transport;
      if (transport.name === 'polling') {
        const session = { openedAt: Date.now(), ms: null };
        this.pollingSessions.push(session);
        const done = () => { session.ms ??= Date.now() - session.openedAt; };
        engine.once('upgrade', done);
        engine.once('close', done);
        this.request(); // the handshake GET, done before 'open'
        transport.on('poll', () => this.request());
        transport.on('drain', () => this.request()); // one POST per write
      } else {
        this.request(); // the WebSocket upgrade
      }
      engine.on('upgrading', () => this.request()); // the probe WebSocket's upgrade request
      engine.on('upgrade', () => this.settle(this.upgradeWaiters));
    });
    socket.on('pr-room-message', (m) => {
      this.received.add(m?.message);
      this.room.delivered(m?.message);
    });
    socket.on('pr-room-error', (e) => this.room.errors.push({ username: this.username, ...e }));
    // As the contract's client: join on every connect (after a recovery it is harmless).
    socket.on('connect', () => {
      this.connects++;
      if (socket.recovered) this.recovered++;
      socket.timeout(CONNECT_TIMEOUT_MS).emit('join-pr-room', this.ref, (err, res) => {
        if (err || !res?.ok) {
          this.joinRefusals++;
          this.settle(this.joinWaiters, new Error(err ? 'join ack timeout' : `join refused: ${res?.error?.code}`));
        } else this.settle(this.joinWaiters);
      });
    });
    return this.waitJoin();
  }

  waitJoin(ms = CONNECT_TIMEOUT_MS) {
    return this.wait(this.joinWaiters, ms, 'join');
  }

  /** Polling clients: resolves once the engine runs on WebSocket (at once for the others). */
  waitUpgrade(ms = UPGRADE_TIMEOUT_MS) {
    if (this.room.path !== 'polling' || this.upgraded) return Promise.resolve();
    return this.wait(this.upgradeWaiters, ms, 'upgrade').catch(() => {});
  }

  wait(list, ms, what) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = list.indexOf(entry);
        if (i !== -1) list.splice(i, 1);
        reject(new Error(`${this.username}@${this.room.pullRequestId}: ${what} timed out`));
      }, ms);
      const entry = { resolve, reject, timer };
      list.push(entry);
    });
  }

  settle(list, err) {
    for (const w of list.splice(0)) {
      clearTimeout(w.timer);
      if (err) w.reject(err);
      else w.resolve();
    }
  }

  typing() {
    this.socket.emit('typing', this.ref);
  }

  /** Sends a message; resolves once every member of the room has it (or the wait runs out). */
  async say(text) {
    const done = this.room.expect(text);
    this.socket.emit('send-message-to-pr-room', { ...this.ref, message: text });
    return done;
  }

  /**
   * A dropped connection (a laptop lid, a network change): the transport closes under the
   * client, which reconnects by itself (within the recovery window: recovered), joins again
   * on `connect` as it always does, and on the polling path polls and upgrades again.
   */
  async reconnect() {
    const joined = this.waitJoin();
    this.socket.io.engine.close();
    await joined;
    await this.waitUpgrade();
  }

  close() {
    this.socket?.disconnect();
  }
}

export class Room {
  constructor({ path, pullRequestId, size = 5 }) {
    this.path = path;
    this.pullRequestId = pullRequestId;
    this.members = Array.from({ length: size }, (_, i) => new Member(this, i));
    this.errors = [];
    /** message text -> { count, resolve } */
    this.pending = new Map();
    this.messagesSent = 0;
    this.messagesDelivered = 0;
    this.deliveryTimeouts = 0;
  }

  expect(text) {
    this.messagesSent++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(text);
        this.deliveryTimeouts++;
        resolve(false);
      }, DELIVERY_TIMEOUT_MS);
      this.pending.set(text, { count: 0, resolve, timer });
    });
  }

  delivered(text) {
    const p = this.pending.get(text);
    if (!p) return;
    if (++p.count < this.members.length) return;
    clearTimeout(p.timer);
    this.pending.delete(text);
    this.messagesDelivered++;
    p.resolve(true);
  }

  /** Every member connected and joined (and upgraded, on the polling path), one after another. */
  async connect(url) {
    for (const m of this.members) await m.connect(url);
    await Promise.all(this.members.map((m) => m.waitUpgrade()));
  }

  close() {
    for (const m of this.members) m.close();
  }

  get sids() {
    return this.members.flatMap((m) => m.sids);
  }

  /**
   * Heartbeat rounds seen in [from, to]. On the direct path the room pings all its sockets in
   * one alarm, so a round is a cluster of pings across members; elsewhere each connection has
   * its own timer and a round is one ping per member (the members' mean count).
   */
  rounds(from = -Infinity, to = Infinity, intervalMs) {
    const inside = (t) => t >= from && t <= to;
    if (this.path !== 'direct') {
      const total = this.members.reduce((n, m) => n + m.pings.filter(inside).length, 0);
      return total / this.members.length;
    }
    const times = this.members.flatMap((m) => m.pings.filter(inside)).sort((a, b) => a - b);
    let clusters = 0, last = -Infinity;
    for (const t of times) {
      if (t - last > intervalMs / 4) clusters++;
      last = t;
    }
    return clusters;
  }

  /** Pings all members got in [from, to] (each costs the server one ping frame and its pong). */
  pings(from = -Infinity, to = Infinity) {
    return this.members.reduce((n, m) => n + m.pings.filter((t) => t >= from && t <= to).length, 0);
  }

  /** Time the members' polling sessions opened in [from, to] lasted (open to upgrade, as the clients saw it). */
  pollingMs(from = -Infinity, to = Infinity) {
    return this.members.reduce((n, m) => n + m.pollingSessions.filter((p) => p.openedAt >= from && p.openedAt <= to).reduce((k, p) => k + (p.ms ?? 0), 0), 0);
  }

  /** Worker requests the members made in [from, to] (client-side count). */
  requests(from = -Infinity, to = Infinity) {
    return this.members.reduce((n, m) => n + m.requests.filter((t) => t >= from && t <= to).length, 0);
  }
}

/** Connects rooms with a few in flight at once; resolves to the rooms that failed (with why). */
export async function connectRooms(rooms, url, concurrency = 4) {
  const failed = [];
  let next = 0;
  const worker = async () => {
    while (next < rooms.length) {
      const room = rooms[next++];
      try {
        await room.connect(url);
      } catch (err) {
        failed.push({ pullRequestId: room.pullRequestId, error: String(err.message ?? err) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, rooms.length) }, worker));
  return failed;
}

export { sleep };
