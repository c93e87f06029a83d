// Contract smoke check for any server speaking the PR-room events (used to verify the reference;
// works against ours too). Exits 0 when every check passes.
//
//   node bench/reference/check.mjs --url http://127.0.0.1:3000
import { io } from 'socket.io-client';
import { parseArgs } from '../lib/args.mjs';

const args = parseArgs();
const url = String(args.url ?? 'http://127.0.0.1:3000');
const pr = 900_000 + Math.floor(Math.random() * 99_999);
const TIMEOUT_MS = 3_000;
const hardCap = setTimeout(() => { console.error('check: hard time cap'); process.exit(2); }, 30_000);

const results = [];
const check = (name, ok, detail) => results.push({ name, ok: Boolean(ok), detail });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function client() {
  const s = io(url, { transports: ['websocket'], forceNew: true, reconnection: false });
  s.inbox = [];
  s.onAny((event, payload) => s.inbox.push({ event, payload }));
  return new Promise((resolve, reject) => {
    s.on('connect', () => resolve(s));
    s.on('connect_error', reject);
  });
}
const call = (s, event, payload) => s.timeout(TIMEOUT_MS).emitWithAck(event, payload);
const got = (s, event) => s.inbox.filter((m) => m.event === event).map((m) => m.payload);

const a = await client();
const b = await client();
try {
  let r = await call(a, 'send-message-to-pr-room', { pullRequestId: pr, username: 'alice', message: 'early' });
  check('send before join -> not_joined', r?.error?.code === 'not_joined', r);

  r = await call(a, 'join-pr-room', { pullRequestId: pr, username: 'alice' });
  check('join ack', r?.ok === true && r.pullRequestId === pr, r);
  check('join members = number of distinct usernames', r?.members === 1, r?.members);
  r = await call(a, 'join-pr-room', { pullRequestId: pr, username: 'alice' });
  check('join is idempotent', r?.ok === true && r.members === 1, r);
  r = await call(b, 'join-pr-room', { pullRequestId: String(pr), username: 'bob' });
  check('second member joins (string id)', r?.ok === true && r.pullRequestId === pr && (Array.isArray(r.members) ? r.members.length === 2 : r.members === 2), r);

  r = await call(a, 'send-message-to-pr-room', { pullRequestId: pr, username: 'alice', message: 'hello' });
  check('send ack has id', r?.ok === true && typeof r.id === 'string', r);
  await sleep(200);
  for (const [who, s] of [['sender', a], ['other', b]]) {
    const m = got(s, 'pr-room-message')[0];
    check(`${who} receives pr-room-message`, m && m.pullRequestId === pr && m.username === 'alice' && m.message === 'hello' && m.id === r?.id && typeof m.sentAt === 'number', m);
  }

  for (const ev of ['typing', 'stop-typing']) {
    r = await call(a, ev, { pullRequestId: pr, username: 'alice' });
    await sleep(150);
    check(`${ev} ack`, r?.ok === true, r);
    check(`${ev} reaches the others`, got(b, ev).some((p) => p.username === 'alice' && p.pullRequestId === pr), got(b, ev));
    check(`${ev} skips the typist`, got(a, ev).length === 0, got(a, ev));
  }

  r = await call(a, 'send-message-to-pr-room', { pullRequestId: pr, username: 'mallory', message: 'x' });
  check('wrong username -> username_mismatch', r?.error?.code === 'username_mismatch', r);
  r = await call(a, 'send-message-to-pr-room', { pullRequestId: pr, username: 'alice', message: 'x'.repeat(4001) });
  check('4001 chars -> message_too_long', r?.error?.code === 'message_too_long', r);
  r = await call(a, 'join-pr-room', { pullRequestId: -1, username: 'alice' });
  check('bad id -> invalid_payload', r?.error?.code === 'invalid_payload', r);

  a.emit('send-message-to-pr-room', { pullRequestId: 'nope', username: 'alice', message: 'x' });
  await sleep(200);
  const e = got(a, 'pr-room-error')[0];
  check('no ack -> pr-room-error event', e?.event === 'send-message-to-pr-room' && e.code === 'invalid_payload' && typeof e.message === 'string', e);

  r = await call(b, 'leave-pr-room', { pullRequestId: pr, username: 'bob' });
  check('leave ack', r?.ok === true && r.pullRequestId === pr, r);
  const before = got(b, 'pr-room-message').length;
  await call(a, 'send-message-to-pr-room', { pullRequestId: pr, username: 'alice', message: 'after leave' });
  await sleep(200);
  check('left member gets nothing', got(b, 'pr-room-message').length === before, got(b, 'pr-room-message'));
  r = await call(b, 'send-message-to-pr-room', { pullRequestId: pr, username: 'bob', message: 'x' });
  check('send after leave -> not_joined', r?.error?.code === 'not_joined', r);
} catch (err) {
  check('no exception', false, String(err?.stack ?? err));
} finally {
  a.close();
  b.close();
  clearTimeout(hardCap);
}

for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.ok ? '' : `  ${JSON.stringify(r.detail)}`}`);
const failed = results.filter((r) => !r.ok).length;
console.log(`${results.length - failed}/${results.length} passed against ${url}`);
process.exit(failed ? 1 : 0);
