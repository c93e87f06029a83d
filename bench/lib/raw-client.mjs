// A light Engine.IO v4 / Socket.IO v5 client over one WebSocket (the `ws` package), speaking only
// the frames the bench load needs: the open handshake, CONNECT to "/", ping/pong, events with an
// ack, acks, and `pr-room-message`. socket.io-client as the bench used it cost the load generator
// 110–190 µs of CPU per delivery, which made the client, not the server, the bottleneck against
// the fastest servers; this one costs 20–40. Most of that is not inflating permessage-deflate
// frames (see the constructor), the rest skipping socket.io-client's full decode, emitter and
// packet objects per frame. Correctness checks (reconnection, recovery, polling) keep
// socket.io-client; see loadgen.mjs.
import WebSocket from 'ws';

const DEFLATE_THRESHOLD = 1024; // socket.io-client's default
const MESSAGE_PREFIX = '42["pr-room-message",';
const OK_ACK = '[{"ok":true';
// The loadgen's message text, {"c":sender,"q":seq,"t":ms}, as it reads inside the JSON frame.
const BODY_C = '"message":"{\\"c\\":';
const BODY_Q = ',\\"q\\":';
const BODY_T = ',\\"t\\":';

/** ws://…/socket.io/?EIO=4&transport=websocket plus the server's extra query (e.g. room=123). */
export function rawUrl(httpUrl, query) {
  const url = new URL('/socket.io/', httpUrl.replace(/^http/, 'ws'));
  url.searchParams.set('EIO', '4');
  url.searchParams.set('transport', 'websocket');
  for (const [k, v] of new URLSearchParams(query ?? '')) url.searchParams.set(k, v);
  return url.href;
}

/**
 * One client. `handlers`: onConnect() once the CONNECT is answered, onConnectError(reason),
 * onDisconnect(reason) after it was connected, onMessage(frame) for each `pr-room-message` frame
 * (read it with readDelivery). Other events (presence, typing, errors) are ignored.
 */
export class RawSocket {
  constructor(url, handlers, { deflate = false } = {}) {
    this.handlers = handlers;
    this.connected = false;
    this.gone = false; // closed or failed: reported once (ws emits 'error' and then 'close')
    this.closedByUs = false;
    this.nextAckId = 0;
    this.acks = new Map(); // ack id -> { cb, timer }
    this.queue = null; // frames waiting for the next tick (see send), or null when none went out this tick
    // No permessage-deflate by default: workerd accepts it (socket.io-client and browsers offer
    // it) and then deflates every frame it sends, which the reference never does, and ws inflates
    // each one on zlib's thread pool, which costs this client ~70 µs per delivery. deflate=true
    // offers it as socket.io-client does. No UTF-8 check of the server's frames either.
    const perMessageDeflate = deflate ? { threshold: DEFLATE_THRESHOLD } : false;
    // allowSynchronousEvents: every frame of a read is handled in one go (ws 8.16 otherwise
    // defers each to its own microtask; later versions made this the default). generateMask: an
    // all-zero mask key, which ws then skips applying; the key's randomness guards against proxy
    // cache poisoning, and there is no proxy between the bench and its local servers.
    this.ws = new WebSocket(url, { perMessageDeflate, skipUTF8Validation: true, allowSynchronousEvents: true, generateMask: zeroMask });
    this.ws.on('message', (data, isBinary) => { if (!isBinary) this.onFrame(data.toString()); });
    this.ws.on('error', (err) => this.lost(`transport error: ${err.message}`));
    this.ws.on('close', () => this.lost('transport close'));
  }

  onFrame(frame) {
    const type = frame.charCodeAt(0);
    if (type === 50 /* 2 ping */) return this.send('3');
    if (type === 48 /* 0 open */) return this.send('40');
    if (type === 49 /* 1 close */) return this.ws.close();
    if (type !== 52 /* 4 message */) return;
    const packet = frame.charCodeAt(1);
    if (packet === 50 /* 2 event */) {
      if (frame.startsWith(MESSAGE_PREFIX)) this.handlers.onMessage(frame);
    } else if (packet === 51 /* 3 ack */) this.onAck(frame);
    else if (packet === 48 /* 0 connect */) {
      this.connected = true;
      this.handlers.onConnect();
    } else if (packet === 52 /* 4 connect error */) this.handlers.onConnectError(`connect_error: ${frame.slice(2)}`);
    else if (packet === 49 /* 1 disconnect */) this.lost('io server disconnect');
  }

  /** Emits `event` with `payload`, asking for an ack: cb(err, {ok, seq?, error?}), err after timeoutMs. */
  emit(event, payload, timeoutMs, cb) {
    const id = this.nextAckId++;
    const timer = setTimeout(() => {
      this.acks.delete(id);
      cb(new Error('operation has timed out'));
    }, timeoutMs);
    this.acks.set(id, { cb, timer });
    this.send(`42${id}[${JSON.stringify(event)},${JSON.stringify(payload)}]`);
  }

  // `43<id>[…]`: a success answer is read without JSON.parse (only its seq is needed).
  onAck(frame) {
    let i = 2, id = 0;
    for (let d; i < frame.length && (d = frame.charCodeAt(i) - 48) >= 0 && d <= 9; i++) id = id * 10 + d;
    const pending = this.acks.get(id);
    if (!pending) return;
    this.acks.delete(id);
    clearTimeout(pending.timer);
    pending.cb(null, frame.startsWith(OK_ACK, i) ? { ok: true, seq: numberAfter(frame, '"seq":', i) } : parseAck(frame.slice(i)));
  }

  // As engine.io-client writes: a frame goes out at once unless one already went out this tick;
  // then it waits for the next tick with the others emitted meanwhile, which reach the server back
  // to back (fewer wake-ups there; measured: a few µs less per message on the floor).
  send(frame) {
    if (this.queue) return void this.queue.push(frame);
    this.write(frame);
    this.queue = [];
    process.nextTick(() => this.flush());
  }

  flush() {
    const frames = this.queue;
    this.queue = null;
    if (!frames?.length) return;
    this.queue = [];
    for (const frame of frames) this.write(frame);
    process.nextTick(() => this.flush());
  }

  // Also as engine.io-client: frames under 1 KB go uncompressed (ws alone would deflate every
  // one, queueing each socket's sends behind zlib's thread pool). Ours are ASCII: length = bytes.
  write(frame) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(frame, { compress: frame.length >= DEFLATE_THRESHOLD });
  }

  /** As socket.io-client's disconnect(): a Socket.IO DISCONNECT, then the WebSocket closes. */
  close() {
    this.closedByUs = true;
    for (const frame of this.queue ?? []) this.write(frame);
    this.queue = null;
    this.write('41');
    this.ws.close();
  }

  lost(reason) {
    const was = this.connected;
    this.connected = false;
    if (this.gone) return;
    this.gone = true;
    if (this.closedByUs) return;
    if (was) this.handlers.onDisconnect(reason);
    else this.handlers.onConnectError(reason);
  }
}

function zeroMask() {} // ws's mask buffer starts zeroed and stays so

function parseAck(json) {
  try {
    const [res] = JSON.parse(json);
    return res ?? { ok: false, error: { code: 'bad_ack' } };
  } catch {
    return { ok: false, error: { code: 'bad_ack' } };
  }
}

/**
 * The fields of a `pr-room-message` frame the loadgen's checks use, read in place (no JSON.parse):
 * { pullRequestId, username, c, q, t, seq } (seq undefined where the server sends none), or
 * 'malformed' (not a message payload) or 'foreign' (a message text the loadgen did not write).
 */
export function readDelivery(frame) {
  const pullRequestId = numberAfter(frame, '"pullRequestId":', MESSAGE_PREFIX.length);
  const u = frame.indexOf('"username":"', MESSAGE_PREFIX.length);
  const m = frame.indexOf('"message":"', MESSAGE_PREFIX.length);
  if (Number.isNaN(pullRequestId) || u === -1 || m === -1) return 'malformed';
  const username = frame.slice(u + 12, frame.indexOf('"', u + 12));
  if (!frame.startsWith(BODY_C, m)) return 'foreign';
  const c = numberAt(frame, m + BODY_C.length);
  const qAt = frame.indexOf(BODY_Q, m);
  const tAt = frame.indexOf(BODY_T, m);
  if (qAt === -1 || tAt === -1) return 'foreign';
  const q = numberAt(frame, qAt + BODY_Q.length);
  const t = numberAt(frame, tAt + BODY_T.length);
  const seq = numberAfter(frame, '"seq":', tAt);
  return { pullRequestId, username, c, q, t, seq: Number.isNaN(seq) ? undefined : seq };
}

// The number after `key` (searched from `from`), or NaN.
function numberAfter(s, key, from) {
  const k = s.indexOf(key, from);
  return k === -1 ? NaN : numberAt(s, k + key.length);
}

// The JSON number starting at `i` (a quoted one too: a server may echo an id as a string), or NaN.
function numberAt(s, i) {
  if (s.charCodeAt(i) === 34 /* " */) i++;
  let j = i;
  for (let ch; j < s.length && (((ch = s.charCodeAt(j)) >= 48 && ch <= 57) || ch === 46 || ch === 45 || ch === 101 || ch === 43); j++);
  return j > i ? Number(s.slice(i, j)) : NaN;
}
