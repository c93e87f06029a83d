/**
 * Recovery as socket.io defines it, end to end with the real socket.io-client against
 * `wrangler dev`: what is recoverable (transport endings) and what is not (namespace
 * disconnects), the window checked when the session is restored, the token re-checked on
 * both paths, and closing and refusing as a socket.io server does.
 */
import type { Socket as NetSocket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { PrRoomMessage } from "../../src/chat/events.js";
import { signToken } from "../shared/token.js";
import { ack, client, closeAll, collect, connected, once, send, type Socket, until } from "../support/client.js";
import { paths } from "../support/paths.js";
import { cuttableProxy } from "../support/proxy.js";
import { serveWorker, type ServedWorker } from "../support/worker.js";

const SECRET = "continuity-test-secret-that-is-long-enough";
const WINDOW_MS = 1500;

let withIdentity: ServedWorker;
let shortWindow: ServedWorker;
/** The defaults (a recovery window longer than pingInterval + pingTimeout), identity off. */
let plain: ServedWorker;
let nextPr = 3_000_000 + Math.floor(Math.random() * 1_000_000) * 100;
const freshPr = () => nextPr++;
const pidOf = (socket: Socket) => (socket as unknown as { _pid: string })._pid;
const lastOffsetOf = (socket: Socket) => (socket as unknown as { _lastOffset: string })._lastOffset;

beforeAll(async () => {
  const lifted = { RATE_LIMIT_PER_SECOND: "1000", RATE_LIMIT_BURST: "1000" };
  [withIdentity, shortWindow, plain] = await Promise.all([
    serveWorker({ vars: { ...lifted, AUTH_SECRET: SECRET, PRESENCE_GRACE_MS: "15000", CLOCK_SKEW_SECONDS: "0" } }),
    serveWorker({ vars: { ...lifted, RECOVERY_WINDOW_MS: String(WINDOW_MS) } }),
    serveWorker({ vars: lifted }),
  ]);
});
afterAll(async () => {
  closeAll();
  await Promise.all([withIdentity?.close(), shortWindow?.close(), plain?.close()]);
});

async function join(socket: Socket, pr: number, username: string): Promise<void> {
  expect(await ack(socket, "join-pr-room", { pullRequestId: pr, username })).toMatchObject({ ok: true });
}

describe.each(paths)("with identity on, on the %s path", (_, optionsFor) => {
  const token = (sub: string, claims: Record<string, unknown> = {}) => signToken(SECRET, { sub, ...claims });

  it("a dropped connection whose token is the same subject's recovers, with what it missed", async () => {
    const pr = freshPr();
    const alice = await connected(withIdentity.url, { ...optionsFor(pr), auth: { token: await token("alice") } });
    await join(alice, pr, "alice");
    const bob = await connected(withIdentity.url, { ...optionsFor(pr), auth: { token: await token("bob") } });
    await join(bob, pr, "bob");
    const atAlice = collect<PrRoomMessage>(alice, "pr-room-message");
    await send(bob, pr, "bob", "before");
    await until(() => atAlice.length === 1, 5000, "before");
    // A fresh token for the same subject, as a page refreshes it: recovery re-checks it.
    alice.auth = { token: await token("alice") };
    alice.io.engine.close();
    await send(bob, pr, "bob", "while away");
    await once(alice, "connect", 10_000);
    expect(alice.recovered).toBe(true);
    await until(() => atAlice.length === 2, 5000, "the missed message");
    expect(atAlice.map((m) => m.message)).toEqual(["before", "while away"]);
  });

  it("a connection whose token expired is not recovered: with a fresh token it comes back as new", async () => {
    const pr = freshPr();
    const alice = await connected(withIdentity.url, { ...optionsFor(pr), auth: { token: await token("alice", { exp: Math.floor(Date.now() / 1000) + 2 }) } });
    await join(alice, pr, "alice");
    const [reason] = await once(alice, "disconnect", 10_000);
    expect(reason).toBe("io server disconnect");
    alice.auth = { token: await token("alice") };
    alice.connect();
    await once(alice, "connect", 10_000);
    expect(alice.recovered).toBe(false);
    expect(await send(alice, pr, "alice", "still joined?")).toMatchObject({ ok: false, error: { code: "not_joined" } });
  });

  it("a recovery re-checks the new token's prs: access that was revoked does not come back", async () => {
    const pr = freshPr();
    const alice = await connected(withIdentity.url, { ...optionsFor(pr), auth: { token: await token("alice", { prs: [String(pr)] }) } });
    await join(alice, pr, "alice");
    // The backend revokes alice's access to the room: her next token no longer lists it.
    alice.auth = { token: await token("alice", { prs: [String(pr + 1)] }) };
    alice.io.engine.close();
    await once(alice, "connect", 10_000);
    expect(alice.recovered).toBe(false);
    expect(await send(alice, pr, "alice", "still here?")).toMatchObject({ ok: false, error: { code: "not_joined" } });
  });
});

describe.each(paths)("on the %s path, what is not recoverable", (_, optionsFor) => {
  it.each([0, 50, 200])("socket.disconnect(), %i ms, then connect() is a new connection: a page that logs one person out hands the next nothing", async (ms) => {
    const pr = freshPr();
    const page = await connected(plain.url, optionsFor(pr));
    await join(page, pr, "alice");
    const firstId = page.id;
    page.disconnect();
    await new Promise((resolve) => setTimeout(resolve, ms));
    // Another person logs in on the same page; socket.io-client still sends alice's pid.
    page.connect();
    await once(page, "connect", 10_000);
    expect(page.recovered).toBe(false);
    expect(page.id).not.toBe(firstId);
    expect(await send(page, pr, "alice", "as alice?")).toMatchObject({ ok: false, error: { code: "not_joined" } });
  });
});

describe.each(paths)("on the %s path, the recovery window (RECOVERY_WINDOW_MS=1500)", (_, optionsFor) => {
  const awayFor = { reconnectionDelay: 4000, reconnectionDelayMax: 4000, randomizationFactor: 0 };

  it.each([
    ["a clean close", (socket: Socket) => socket.io.engine.close()],
    ["a TCP reset", (socket: Socket) => ((socket.io.engine.transport as any).ws._socket as NetSocket).resetAndDestroy()],
  ])("is checked when the session is restored: away 4 s after %s is not recovered", async (_, drop) => {
    const pr = freshPr();
    const alice = await connected(shortWindow.url, { ...optionsFor(pr), ...awayFor });
    await join(alice, pr, "alice");
    drop(alice);
    await once(alice, "connect", 15_000);
    expect(alice.recovered).toBe(false);
  }, 30_000);

  it("is checked for a connection the server has not seen end: back after 4 s from behind a cut network is not recovered", async () => {
    const pr = freshPr();
    const proxy = await cuttableProxy(shortWindow.url);
    try {
      const alice = await connected(proxy.url, { ...optionsFor(pr), ...awayFor });
      await join(alice, pr, "alice");
      // The network goes: the server hears nothing (no close, no reset) and still holds the old connection.
      proxy.blackhole();
      alice.io.engine.close();
      await once(alice, "connect", 15_000);
      expect(alice.recovered).toBe(false);
      alice.close();
    } finally {
      await proxy.close();
    }
  }, 30_000);

  it("a blip within the window is recovered", async () => {
    const pr = freshPr();
    const alice = await connected(shortWindow.url, { ...optionsFor(pr), reconnectionDelay: 100, reconnectionDelayMax: 100 });
    await join(alice, pr, "alice");
    alice.io.engine.close();
    await once(alice, "connect", 10_000);
    expect(alice.recovered).toBe(true);
  });
});

describe("a polling connection opened for one pull request", () => {
  it("does not recover a connection that was in other rooms too", async () => {
    const [p1, p2] = [freshPr(), freshPr()];
    const first = await connected(shortWindow.url);
    await join(first, p1, "alice");
    await join(first, p2, "alice");
    const bob = await connected(shortWindow.url);
    await join(bob, p1, "bob");
    const atFirst = collect<PrRoomMessage>(first, "pr-room-message");
    await send(bob, p1, "bob", "hello");
    await until(() => atFirst.length === 1, 5000, "a message, for an offset");
    const [pid, offset, firstId] = [pidOf(first), lastOffsetOf(first), first.id];
    first.io.engine.close();
    first.close();
    // A new client presenting the pid itself (socket.io-client's `recovered` is only true on the same client object).
    const only = client(shortWindow.url, { transports: ["polling"], query: { pullRequestId: String(p1) }, auth: { pid, offset } });
    await once(only, "connect", 10_000);
    expect(only.id).not.toBe(firstId);
    expect(await send(only, p1, "alice", "back in p1?")).toMatchObject({ ok: false, error: { code: "not_joined" } });
  });
});

describe("closing and refusing like a socket.io server, on the direct path", () => {
  it("answers a close frame without a status code at once", async () => {
    const ws = new WebSocket(`${shortWindow.url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket&pullRequestId=${freshPr()}`);
    await new Promise((resolve, reject) => {
      ws.once("message", resolve);
      ws.once("error", reject);
    });
    const started = Date.now();
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
    ws.close(); // a close frame with no code, as socket.io-client's close() sends
    const code = await closed;
    expect(code).toBe(1005);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("refuses a bad pullRequestId with a CONNECT_ERROR over the WebSocket, so the client stops retrying", async () => {
    const socket = client(shortWindow.url, { query: { pullRequestId: "not-a-number" } });
    const [error] = await once(socket, "connect_error", 10_000);
    expect(error.data).toMatchObject({ code: "invalid_payload" });
    expect(error.message).toMatch(/pullRequestId/);
    expect(socket.active).toBe(false);
  });
});
