// Reference implementation of the PR-room event contract on the official `socket.io` package.
// It is the yardstick for the Workers server: same events, same acks, same room semantics,
// running the way most people would deploy it (one Node process, in-memory adapter).
//
//   node bench/reference/server.mjs --port 3000 [--host 127.0.0.1] [--max-message 4000]
//
// Validation mirrors src/chat/events.ts (username 1-64 chars after trim, no control characters;
// message not blank; pullRequestId a positive integer or digit string, "0123" == 123) so both
// servers do comparable work per event.
//
// Prints `READY reference http://HOST:PORT` once listening; bench/run.mjs waits for that line.
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Server } from 'socket.io';
import { parseArgs } from '../lib/args.mjs';

const args = parseArgs();
const host = args.host ?? '127.0.0.1';
const port = Number(args.port ?? 3000);
const MAX_MESSAGE = Number(args['max-message'] ?? 4000); // wrangler.toml MAX_MESSAGE_LENGTH
const MAX_USERNAME = 64;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

// room name -> Map<socket.id, username>. Kept beside socket.io's own rooms so `members` and the
// "joined before sending" rule are O(1) and need no async fetchSockets().
const members = new Map();
const roomOf = (id) => `pr:${id}`;

const httpServer = createServer((req, res) => {
  // Plain HTTP answers a health probe; socket.io handles /socket.io/ itself.
  res.writeHead(req.url === '/health' ? 200 : 404, { 'content-type': 'text/plain' });
  res.end(req.url === '/health' ? 'ok' : 'not found');
});
const io = new Server(httpServer, { serveClient: false, cors: { origin: '*' } });

class RoomError extends Error {
  constructor(code, message, pullRequestId) {
    super(message);
    this.code = code;
    this.pullRequestId = pullRequestId;
  }
}

// pullRequestId: a positive integer or a string of digits. Returns the public form: a number when
// it fits one exactly (the outbound payload carries a number), else the canonical digit string.
function parsePrId(v) {
  let digits;
  if (Number.isSafeInteger(v) && v > 0) digits = String(v);
  else if (typeof v === 'string' && /^[0-9]{1,20}$/.test(v)) digits = v.replace(/^0+/, '');
  if (!digits) return undefined;
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : digits;
}

function parseBase(payload) {
  if (payload === null || typeof payload !== 'object') throw new RoomError('invalid_payload', 'payload must be an object');
  const pullRequestId = parsePrId(payload.pullRequestId);
  if (pullRequestId === undefined) throw new RoomError('invalid_payload', 'pullRequestId must be a positive integer');
  const username = typeof payload.username === 'string' ? payload.username.trim() : '';
  if (username === '' || username.length > MAX_USERNAME || CONTROL.test(username)) {
    throw new RoomError('invalid_payload', `username must be 1-${MAX_USERNAME} characters without control characters`, pullRequestId);
  }
  return { pullRequestId, username };
}

// The username a socket bound at join, or a not_joined / username_mismatch error.
function requireMember(socket, pullRequestId, username) {
  const bound = members.get(roomOf(pullRequestId))?.get(socket.id);
  if (bound === undefined) throw new RoomError('not_joined', `join pr:${pullRequestId} first`, pullRequestId);
  if (bound !== username) throw new RoomError('username_mismatch', `joined as ${bound}`, pullRequestId);
}

function removeMember(socket, room) {
  const m = members.get(room);
  if (!m) return;
  m.delete(socket.id);
  if (m.size === 0) members.delete(room);
}

const handlers = {
  'join-pr-room'(socket, payload) {
    const { pullRequestId, username } = parseBase(payload);
    const room = roomOf(pullRequestId);
    let m = members.get(room);
    const bound = m?.get(socket.id);
    // Idempotent for the same username; a socket cannot rebind itself to another name.
    if (bound !== undefined && bound !== username) throw new RoomError('username_mismatch', `joined as ${bound}`, pullRequestId);
    if (!m) members.set(room, (m = new Map()));
    m.set(socket.id, username);
    socket.join(room);
    return { ok: true, pullRequestId, members: new Set(m.values()).size };
  },

  'send-message-to-pr-room'(socket, payload) {
    const { pullRequestId, username } = parseBase(payload);
    const { message } = payload;
    if (typeof message !== 'string' || message.trim() === '') throw new RoomError('invalid_payload', 'message must be a non-blank string', pullRequestId);
    if (message.length > MAX_MESSAGE) throw new RoomError('message_too_long', `message exceeds ${MAX_MESSAGE} characters`, pullRequestId);
    requireMember(socket, pullRequestId, username);
    const id = randomUUID();
    // io.to() (not socket.to()) so the sender gets its own message, as the contract says.
    io.to(roomOf(pullRequestId)).emit('pr-room-message', { pullRequestId, username, message, id, sentAt: Date.now() });
    return { ok: true, id };
  },

  'leave-pr-room'(socket, payload) {
    const { pullRequestId } = parseBase(payload);
    const room = roomOf(pullRequestId);
    removeMember(socket, room);
    socket.leave(room);
    return { ok: true, pullRequestId };
  },

  typing: (socket, payload) => relayTyping('typing', socket, payload),
  'stop-typing': (socket, payload) => relayTyping('stop-typing', socket, payload),
};

function relayTyping(event, socket, payload) {
  const { pullRequestId, username } = parseBase(payload);
  requireMember(socket, pullRequestId, username);
  // socket.to() excludes the typist.
  socket.to(roomOf(pullRequestId)).emit(event, { pullRequestId, username });
  return { ok: true };
}

io.on('connection', (socket) => {
  for (const [event, handler] of Object.entries(handlers)) {
    socket.on(event, (...args) => {
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
      try {
        const result = handler(socket, args[0]);
        ack?.(result);
      } catch (err) {
        if (!(err instanceof RoomError)) throw err;
        const error = { code: err.code, message: err.message };
        if (ack) ack({ ok: false, error });
        else socket.emit('pr-room-error', { event, ...(err.pullRequestId !== undefined && { pullRequestId: err.pullRequestId }), ...error });
      }
    });
  }
  // 'disconnecting' still has socket.rooms populated.
  socket.on('disconnecting', () => {
    for (const room of socket.rooms) removeMember(socket, room);
  });
});

httpServer.listen(port, host, () => {
  console.log(`READY reference http://${host}:${httpServer.address().port}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
