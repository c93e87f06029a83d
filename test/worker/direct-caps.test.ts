/**
 * The direct path's caps and heartbeat inside workerd, in a real room (vitest.config.ts:
 * PING_INTERVAL_MS 300, PING_TIMEOUT_MS 200, CONNECT_TIMEOUT_MS 1000, MAX_BACKLOG_BYTES at
 * its default 1 MiB): sockets that never CONNECT have a cap of their own and are closed at
 * their CONNECT deadline; a dead client goes within pingInterval + pingTimeout of its last
 * pong; pongs nobody asked for are found out though the runtime answers them; while a
 * probe is out, pongs reach the room and are matched one by one.
 */
import { env, exports } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { PrRoom } from "../../src/room/pr-room.js";
import { DirectSessions, MAX_PENDING_DIRECT } from "../../src/session/direct.js";
import { Namespaces } from "../../src/session/namespaces.js";
import { until } from "../shared/until.js";
import { call, member, openRaw, PATHS, type RawClient } from "./raw-client.js";

let nextPr = 47_000;
const freshPr = () => nextPr++;
const direct = PATHS[1][1];
const PING_INTERVAL = 300; // vitest.config.ts
const PING_TIMEOUT = 200;
const CONNECT_TIMEOUT = 1000;

/** A direct socket that got its open packet and will never CONNECT, with when it opened. */
async function waiting(pr: number): Promise<{ client: RawClient; openedAt: number }> {
  const client = await openRaw(direct(pr));
  await client.next(); // the open packet
  return { client, openedAt: Date.now() };
}

/** When `client` is closed (polled; it may be closed already). */
async function closedAt(client: RawClient, timeoutMs: number): Promise<number> {
  await until(() => client.closed !== undefined, timeoutMs, "the socket to be closed", 5);
  return Date.now();
}

describe("sockets that have not CONNECTed", () => {
  it(`are capped at ${MAX_PENDING_DIRECT} per room: more are refused with Engine.IO's 503 {code: 3}, and a CONNECT frees a place`, async () => {
    const pr = freshPr();
    const held = await Promise.all(Array.from({ length: MAX_PENDING_DIRECT }, () => waiting(pr)));
    const refused = await exports.default.fetch(`http://localhost/socket.io/?${direct(pr)}`, { headers: { Upgrade: "websocket" } });
    expect(refused.status).toBe(503);
    expect(await refused.json()).toEqual({ code: 3, message: expect.stringContaining("have not sent CONNECT yet") });
    // One of them CONNECTs: its place is free for the next socket, which CONNECTs too.
    held[0]!.client.send("40");
    expect(String(await held[0]!.client.next())).toMatch(/^40\{"sid"/);
    const next = await openRaw(direct(pr));
    await next.connect();
    expect(await call(next, "join-pr-room", { pullRequestId: pr, username: "next" })).toMatchObject({ ok: true });
    // The others are closed at their CONNECT deadline; then newcomers are let in again.
    for (const { client } of held.slice(1)) await closedAt(client, CONNECT_TIMEOUT + 1000);
    expect(held[1]!.client.closed?.reason).toBe("connect timeout");
    const later = await openRaw(direct(pr));
    await later.connect();
    for (const client of [held[0]!.client, next, later]) {
      expect(client.closed).toBeUndefined();
      client.close();
    }
  });

  it("are closed at CONNECT_TIMEOUT_MS, on time (the room's alarm is set for it, not left to the ping round)", async () => {
    const pr = freshPr();
    const anchor = await member(direct, pr, "anchor"); // keeps the room's heartbeat going
    const sockets: Array<{ client: RawClient; openedAt: number }> = [];
    // Opened at every phase of the heartbeat round.
    for (let i = 0; i < 6; i++) {
      sockets.push(await waiting(pr));
      await new Promise((resolve) => setTimeout(resolve, PING_INTERVAL / 6));
    }
    const lateness: number[] = [];
    for (const { client, openedAt } of sockets) lateness.push((await closedAt(client, CONNECT_TIMEOUT + 1000)) - openedAt - CONNECT_TIMEOUT);
    expect(Math.min(...lateness)).toBeGreaterThanOrEqual(-50);
    expect(Math.max(...lateness)).toBeLessThan(150);
    expect(sockets.every(({ client }) => client.closed?.reason === "connect timeout")).toBe(true);
    expect(anchor.closed).toBeUndefined();
    anchor.close();
  });

  it("at the cap, the oldest gives its place to a new socket once it has waited the grace; a younger one is kept", async () => {
    const stub = env.PR_ROOM.getByName(`pr:${freshPr()}`);
    await runInDurableObject(stub, async (_room: PrRoom, state) => {
      const options = { pingInterval: 60_000, pingTimeout: 60_000, maxPayload: 1_000, connectTimeout: 60_000, maxBacklog: 0 };
      const sessions = new DirectSessions(state, options, new Namespaces(), { maxPending: 2, pendingGrace: 100, wake: () => {} });
      const closes: string[] = [];
      const open = (name: string) => {
        const response = sessions.accept(new Request("http://localhost/socket.io/?EIO=4&transport=websocket"));
        response.webSocket?.accept();
        response.webSocket?.addEventListener("close", (event) => {
          closes.push(`${name}: ${event.reason}`);
        });
        return response.status;
      };
      expect(open("first")).toBe(101);
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(open("second")).toBe(101);
      expect(open("third")).toBe(101); // the first has waited past the grace: it goes
      await until(() => closes.length === 1, 2000, "the first to be closed");
      expect(closes).toEqual(["first: connect timeout"]);
      expect(open("fourth")).toBe(503); // the second and third are younger than the grace
      expect(sessions.pendingCount).toBe(2);
    });
  });
});

describe("the heartbeat", () => {
  it("closes a dead client at the round after its unanswered ping: within two intervals of its last pong", async () => {
    const pr = freshPr();
    const ghost = await member(direct, pr, "ghost");
    ghost.autoPong = false;
    // It answers two more pings, then goes silent.
    let lastPong = 0;
    for (let answered = 0; answered < 2; ) {
      if ((await ghost.next({ timeoutMs: 2000 })) === "2") {
        ghost.send("3");
        lastPong = Date.now();
        answered++;
      }
    }
    // The next round's ping, which it leaves unanswered, is judged by the round after it (one
    // alarm per round: no alarm of its own pingTimeout after the ping).
    let unansweredAt = 0;
    while (unansweredAt === 0) if ((await ghost.next({ timeoutMs: 2000 })) === "2") unansweredAt = Date.now();
    const closed = await ghost.waitClosed(3000);
    expect(closed.reason).toBe("ping timeout");
    expect(Date.now() - unansweredAt).toBeGreaterThanOrEqual(PING_TIMEOUT);
    expect(Date.now() - unansweredAt).toBeLessThan(PING_INTERVAL + 100);
    // So from its last pong: two intervals (and the alarms' lateness).
    expect(Date.now() - lastPong).toBeLessThan(2 * PING_INTERVAL + 150);
  });

  it("finds out a client that sends pongs nobody asked for, though the runtime answers them", { timeout: 15_000 }, async () => {
    const pr = freshPr();
    const flood = await member(direct, pr, "flood");
    const bystander = await member(direct, pr, "bystander");
    flood.autoPong = false;
    const timer = setInterval(() => flood.closed || flood.send("3"), 100); // a pong every 100 ms, asked for or not
    try {
      // The round sees its last pong, long after the ping: it answers nothing, so the ping is unanswered.
      const closed = await flood.waitClosed(5000);
      expect(closed.reason).toBe("ping timeout");
    } finally {
      clearInterval(timer);
    }
    expect(bystander.closed).toBeUndefined();
    bystander.close();
  });

  it("while a probe is out, matches pongs one by one: a reader that answers each ping three times is found out, an honest one is not", { timeout: 15_000 }, async () => {
    const pr = freshPr();
    const honest = await member(direct, pr, "honest");
    const liar = await member(direct, pr, "liar");
    liar.autoPong = false;
    liar.ws.addEventListener("message", (event) => {
      if (event.data === "2" && !liar.closed) for (let i = 0; i < 3; i++) liar.send("3");
    });
    const senders = await Promise.all(Array.from({ length: 15 }, (_, i) => member(direct, pr, `sender${i}`)));
    const body = "x".repeat(3_900);
    // 300 messages of 3.9 kB (1.2 MB, over the 256 KiB at which probes start), within the rate limit's burst.
    await Promise.all(
      senders.flatMap((sender, s) =>
        Array.from({ length: 20 }, (_, i) => call(sender, "send-message-to-pr-room", { pullRequestId: pr, username: `sender${s}`, message: `${s}.${i} ${body}` })),
      ),
    );
    const closed = await liar.waitClosed(5000);
    expect(closed).toEqual({ code: 1002, reason: "protocol error" });
    let got = 0;
    while (got < 300) {
      await honest.nextEvent("pr-room-message", 5000);
      got++;
    }
    expect(honest.closed).toBeUndefined();
    // The burst is read: no probe is out, and the runtime answers pongs again.
    const stub = env.PR_ROOM.getByName(`pr:${pr}`);
    await until(async () => (await runInDurableObject(stub, (_: PrRoom, state) => state.getWebSocketAutoResponse() !== null)), 3000, "the auto-response back");
    for (const client of [honest, ...senders]) client.close();
  });
});
