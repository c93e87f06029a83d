/**
 * The holes in "nothing lost or doubled" that a review found, each proven closed inside
 * workerd: a connection in two rooms dropped twice, a link replaced by its watchdog, late
 * frames from a replaced link, namespace disconnects, the recovery record's holder, caps on
 * replays and links, and what the room keeps in memory.
 */
import { env, exports } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { faultTargets } from "../../src/gateway/chat.js";
import { GatewayRooms, MAX_CLOSING_LINKS, type RecordStub } from "../../src/gateway/rooms.js";
import { configOf } from "../../src/chat/config.js";
import type { Socket } from "../../src/session/socket.js";
import type { LinkTiming } from "../../src/gateway/link-socket.js";
import { RoomLink } from "../../src/gateway/room-link.js";
import { TAKEOVER_GRACE_MS } from "../../src/chat/recovery.js";
import { LinkClose } from "../../src/chat/link.js";
import type { Alarm } from "../../src/room/alarm.js";
import type { PrRoom } from "../../src/room/pr-room.js";
import { RoomTimers } from "../../src/room/timers.js";
import { ObjectMeter } from "../../src/util/meter.js";
import { never, until } from "../shared/until.js";
import { call, connectWith, member, nextMessage, openRaw, PATHS, type RawClient } from "./raw-client.js";

let nextPr = 47_000;
const freshPr = () => nextPr++;
const gateway = PATHS[0][1];
const FAST: Partial<LinkTiming> = { attempts: 4, backoffBaseMs: 5, backoffCapMs: 20, commandTimeoutMs: 200 };

async function drop(client: RawClient): Promise<void> {
  client.close();
  await client.waitClosed().catch(() => undefined);
}

/** Bob says `message`, waiting out the rate limit (10/s, bursts of 20) when he hits it. */
async function say(client: RawClient, pr: number, message: string): Promise<any> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const answer = await call(client, "send-message-to-pr-room", { pullRequestId: pr, username: "bob", message });
    if (answer?.error?.code !== "rate_limited") return answer;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("still rate limited");
}

describe("a gateway connection in two rooms", () => {
  it("dropped, recovered, dropped again and recovered again, gets every message once", async () => {
    const [p1, p2] = [freshPr(), freshPr()];
    const first = await openRaw(gateway(p1));
    const { sid, pid } = await connectWith(first, {});
    for (const pr of [p1, p2]) await call(first, "join-pr-room", { pullRequestId: pr, username: "alice" });
    const [bob1, bob2] = await Promise.all([p1, p2].map((pr) => member(gateway, pr, "bob")));
    await say(bob1!, p1, "a1");
    await say(bob2!, p2, "b1");
    let offset: string | undefined;
    for (let i = 0; i < 2; i++) offset = (await nextMessage(first))[1];
    await drop(first);

    const second = await openRaw(gateway(p1));
    expect(await connectWith(second, { pid, offset })).toEqual({ sid, pid });
    // After the recovery only p1 speaks: the offset must still say where the client is in p2.
    await say(bob1!, p1, "a2");
    const [a2, offset2] = await nextMessage(second);
    expect(a2.message).toBe("a2");
    expect(offset2?.split(",").sort()).toEqual([`${p1}:2`, `${p2}:1`].sort());
    await drop(second);

    const third = await openRaw(gateway(p1));
    expect(await connectWith(third, { pid, offset: offset2 })).toEqual({ sid, pid });
    await say(bob2!, p2, "b2");
    // Not b1 again: p2 resumes after b1.
    expect((await nextMessage(third))[0].message).toBe("b2");
    third.close();
    bob1!.close();
    bob2!.close();
  });

  it("has an offset naming every room as soon as it joined them, before any message", async () => {
    const [p1, p2] = [freshPr(), freshPr()];
    const bob2 = await member(gateway, p2, "bob");
    await say(bob2, p2, "before alice");
    const client = await openRaw(gateway(p1));
    await connectWith(client, {});
    for (const pr of [p1, p2]) await call(client, "join-pr-room", { pullRequestId: pr, username: "alice" });
    const bob1 = await member(gateway, p1, "bob");
    await say(bob1, p1, "a1");
    const [, offset] = await nextMessage(client);
    expect(offset?.split(",").sort()).toEqual([`${p1}:1`, `${p2}:1`].sort());
    client.close();
    bob1.close();
    bob2.close();
  });
});

describe("a link replaced by its watchdog", () => {
  it("closes the old socket as gone, so the room keeps the member and the new link resumes it", async () => {
    const { 0: gatewaySide, 1: roomSide } = new WebSocketPair();
    roomSide.accept();
    let closedWith: number | undefined;
    roomSide.addEventListener("close", (event) => {
      closedWith = event.code;
    });
    const link = new RoomLink("alice", async () => ({ ws: gatewaySide }), { frame() {}, unanswered() {}, failed() {} }, true, FAST);
    await link.open();
    link.send({ t: "msg", ack: 1, message: "never answered" });
    // The room never answers: the watchdog replaces the link.
    await until(() => closedWith !== undefined, 2000, "the old link's close");
    expect(closedWith).toBe(LinkClose.gone);
    link.leave();
  });

  it("loses nothing: the room replays what came while the link was replaced, and the client hears no error", async () => {
    const pr = freshPr();
    const alice = await openRaw(gateway(pr));
    const { sid, pid } = await connectWith(alice, {});
    await call(alice, "join-pr-room", { pullRequestId: pr, username: "alice" });
    const bob = await member(gateway, pr, "bob");
    await say(bob, pr, "m1");
    await nextMessage(alice);
    const replaced = await exports.default.fetch(`http://localhost/__faults/connections/${sid}/replace-links`, { method: "POST" });
    expect(await replaced.json()).toEqual({ ok: true, pending: true });
    // The replacement happens at alice's next event, in her connection's own context.
    alice.emit("typing", { pullRequestId: pr, username: "alice" });
    await say(bob, pr, "m2");
    await say(bob, pr, "m3");
    expect([(await nextMessage(alice))[0].message, (await nextMessage(alice))[0].message]).toEqual(["m2", "m3"]);
    expect(alice.inboxHas((frame) => typeof frame === "string" && frame.includes("pr-room-error"))).toBe(false);
    // The room kept alice's membership from her first join: a recovery "since the join" replays m1 too.
    await drop(alice);
    const back = await openRaw(gateway(pr));
    expect(await connectWith(back, { pid })).toEqual({ sid, pid });
    expect((await nextMessage(back))[0].message).toBe("m1");
    back.close();
    bob.close();
  });

  it("drops frames the replaced socket still delivers: they come again, in order, on the new one", async () => {
    const pair = () => {
      const { 0: g, 1: r } = new WebSocketPair();
      r.accept();
      return { g, r };
    };
    const [old, fresh] = [pair(), pair()];
    const sides = [old, fresh];
    const frames: string[] = [];
    const link = new RoomLink("alice", async () => ({ ws: sides.shift()!.g }), { frame: (f) => void frames.push(f), unanswered() {}, failed() {} }, true, FAST);
    await link.open();
    expect(link.replace()).toBe(true);
    await until(() => sides.length === 0, 1000, "the new link");
    old.r.send('42["pr-room-message",{"seq":5},"1:5"]');
    fresh.r.send('42["pr-room-message",{"seq":6},"1:6"]');
    await until(() => frames.length === 1, 1000, "the new link's frame");
    await never(() => frames.length > 1, 200, "a late frame from the old link");
    expect(frames).toEqual(['42["pr-room-message",{"seq":6},"1:6"]']);
    link.leave();
  });
});

describe("a resume the room refuses on a link that had been open", () => {
  it("tells the client messages_lost with the count, and takes it back for what comes next", async () => {
    const pr = freshPr();
    const alice = await openRaw(gateway(pr));
    const { sid } = await connectWith(alice, {});
    await call(alice, "join-pr-room", { pullRequestId: pr, username: "alice" });
    const bob = await member(gateway, pr, "bob");
    await say(bob, pr, "seen");
    await nextMessage(alice);
    const rooms = faultTargets.get(sid)!;
    const [link] = (rooms as unknown as { links: Map<string, RoomLink> }).links.values();
    // 45 messages of 500 characters: more than MAX_REPLAY_BYTES (16384 in vitest.config.ts) can replay.
    for (let i = 0; i < 45; i++) await say(bob, pr, `burst ${i} ${"x".repeat(500)}`);
    for (let i = 0; i < 45; i++) await nextMessage(alice);
    // Pretend the link is behind by the whole burst (as after a long room outage), then replace it.
    link!.position = 1;
    rooms.faultPending = true;
    alice.emit("typing", { pullRequestId: pr, username: "alice" });
    const [, error] = await alice.nextEvent("pr-room-error", 5000);
    expect(error).toMatchObject({ code: "messages_lost", pullRequestId: pr, lost: 45 });
    await say(bob, pr, "after");
    expect((await nextMessage(alice))[0].message).toBe("after");
    alice.close();
    bob.close();
  });
});

describe.each(PATHS)("on the %s path, an explicit disconnect", (_, queryFor) => {
  it("is not recovered: the same pid gets a fresh connection, not the rooms and name", async () => {
    const pr = freshPr();
    const alice = await openRaw(queryFor(pr));
    const { sid, pid } = await connectWith(alice, {});
    await call(alice, "join-pr-room", { pullRequestId: pr, username: "alice" });
    const probe = await member(queryFor, pr, "probe");
    alice.send("41"); // the client's namespace disconnect: socket.disconnect()
    await until(async () => !(await call(probe, "get-pr-room-users", { pullRequestId: pr })).users.includes("alice"), 3000, "alice to leave");
    const again = await openRaw(queryFor(pr));
    const answer = await connectWith(again, { pid });
    expect(answer.sid).not.toBe(sid);
    expect(await call(again, "send-message-to-pr-room", { pullRequestId: pr, username: "carol", message: "hi" })).toMatchObject({
      ok: false,
      error: { code: "not_joined" },
    });
    alice.close();
    again.close();
    probe.close();
  });
});

describe("the recovery record", () => {
  it("refuses a save from a holder whose connection was taken over", async () => {
    const record = env.CONNECTION_RECORD.getByName(`rec:holder-test-${freshPr()}`);
    await record.save("old-sid", "socket-1", null, [{ key: "1", username: "alice" }]);
    expect(await record.claim("new-sid", {})).toMatchObject({ ok: true, rooms: [{ key: "1", username: "alice" }] });
    await record.save("new-sid", "socket-1", null, [{ key: "1", username: "alice" }, { key: "2", username: "alice" }]);
    // The half-dead old connection leaves a room: it must not overwrite its successor's rooms.
    await record.save("old-sid", "socket-1", null, []);
    await record.forget("old-sid");
    expect(await record.claim("newest-sid", {})).toMatchObject({ ok: true, rooms: [{ key: "1" }, { key: "2" }] });
  });
});

describe("a claim on a connection the server has not seen end", () => {
  const recordOf = () => env.CONNECTION_RECORD.getByName(`rec:grace-test-${freshPr()}`);
  const rooms = [{ key: "1", username: "alice" }];

  it("is refused when the holder says, within TAKEOVER_GRACE_MS, that it disconnected on purpose", async () => {
    const record = recordOf();
    await record.save("old-sid", "socket-1", null, rooms);
    const started = Date.now();
    const claimed = record.claim("new-sid", {});
    await new Promise((resolve) => setTimeout(resolve, 100));
    await record.forget("old-sid");
    expect(await claimed).toEqual({ ok: false, why: "unknown or expired connection" });
    expect(Date.now() - started).toBeLessThan(TAKEOVER_GRACE_MS);
  });

  it("is granted as soon as the holder says its transport closed", async () => {
    const record = recordOf();
    await record.save("old-sid", "socket-1", null, rooms);
    const started = Date.now();
    const claimed = record.claim("new-sid", {});
    await new Promise((resolve) => setTimeout(resolve, 100));
    await record.detach("old-sid", Date.now());
    expect(await claimed).toMatchObject({ ok: true, socketId: "socket-1", rooms });
    expect(Date.now() - started).toBeLessThan(TAKEOVER_GRACE_MS);
  });

  it("takes over a holder that says nothing, once the grace has passed", async () => {
    const record = recordOf();
    await record.save("old-sid", "socket-1", null, rooms);
    const started = Date.now();
    expect(await record.claim("new-sid", {})).toMatchObject({ ok: true, socketId: "socket-1" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(TAKEOVER_GRACE_MS);
  });

  it("on the gateway, a disconnect that arrives after the next connection's CONNECT is not recovered", async () => {
    // socket.io-client holds `socket.disconnect()` until an upgrade in flight is done, so the
    // old connection's 41 can reach the server after the new one has asked to recover.
    const pr = freshPr();
    const alice = await openRaw(gateway(pr));
    const { sid, pid } = await connectWith(alice, {});
    await call(alice, "join-pr-room", { pullRequestId: pr, username: "alice" });
    const again = await openRaw(gateway(pr));
    await again.next(); // open packet
    again.send(`40${JSON.stringify({ pid })}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    alice.send("41");
    const reply = (await again.next()) as string;
    expect(JSON.parse(reply.slice(2)).sid).not.toBe(sid);
    expect(await call(again, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "hi" })).toMatchObject({
      ok: false,
      error: { code: "not_joined" },
    });
    alice.close();
    again.close();
  });
});

describe("a gateway join", () => {
  it("is answered only once the recovery record holds it, so a restart right after cannot forget it", async () => {
    const pr = String(freshPr());
    const real = env.CONNECTION_RECORD.getByName(`rec:save-test-${pr}`);
    let release!: () => void;
    const saved = new Promise<void>((resolve) => (release = resolve));
    // The real record, reached late: as when the record's object is far away or busy.
    const record: RecordStub = {
      save: async (...args) => {
        await saved;
        await real.save(...args);
      },
      detach: (holder, at) => real.detach(holder, at),
      forget: (holder) => real.forget(holder),
    };
    const rooms = new GatewayRooms(env.PR_ROOM, configOf(env), { sid: "sid-1", socketId: "socket-1", subject: null }, record);
    const sent: string[] = [];
    rooms.attach({ sendFrame: (frame: string) => sent.push(frame) } as unknown as Socket<unknown>);
    rooms.join(pr, "alice", { t: "join", ack: 7 });
    await never(() => sent.length > 0, 500, "the join's answer before the record was saved");
    release();
    await until(() => sent.length > 0, 5000, "the join's answer");
    expect(sent[0]).toMatch(/^437\[/);
    expect(await real.claim("sid-2", {})).toMatchObject({ ok: true, rooms: [{ key: pr, username: "alice" }] });
    rooms.abandon();
  });
});

describe("a gateway connection that ends for good", () => {
  it("writes nothing to its record after forgetting it: the leaves that follow cannot bring it back", async () => {
    const pr = String(freshPr());
    const real = env.CONNECTION_RECORD.getByName(`rec:forget-test-${pr}`);
    const calls: string[] = [];
    const record: RecordStub = {
      save: (...args) => (calls.push("save"), real.save(...args)),
      detach: (holder, at) => (calls.push("detach"), real.detach(holder, at)),
      forget: (holder) => (calls.push("forget"), real.forget(holder)),
    };
    const rooms = new GatewayRooms(env.PR_ROOM, configOf(env), { sid: "sid-1", socketId: "socket-1", subject: null }, record);
    rooms.attach({ sendFrame: () => {} } as unknown as Socket<unknown>);
    const joined = rooms.join(pr, "alice", { t: "join", ack: 1 });
    await until(() => calls.includes("save"), 5000, "the join's save");
    rooms.forget();
    joined.leave();
    await never(() => calls.length > 2, 300, "a write after the forget");
    expect(calls).toEqual(["save", "forget"]);
    expect(await real.claim("sid-2", {})).toEqual({ ok: false, why: "unknown or expired connection" });
  });
});

describe("a direct connection resumed before it joined", () => {
  it("stays recoverable: a later drop starts a new window", async () => {
    const pr = freshPr();
    const first = await openRaw(PATHS[1][1](pr));
    const { sid, pid } = await connectWith(first, {});
    await drop(first);
    const second = await openRaw(PATHS[1][1](pr));
    expect(await connectWith(second, { pid })).toEqual({ sid, pid });
    // Connected longer than the window (RECOVERY_WINDOW_MS = 3000) since the first drop.
    await new Promise((resolve) => setTimeout(resolve, 3300));
    await drop(second);
    const third = await openRaw(PATHS[1][1](pr));
    expect(await connectWith(third, { pid })).toEqual({ sid, pid });
    third.close();
  });
});

describe("caps on recovery", () => {
  it("a replay larger than MAX_REPLAY_BYTES is not recovered: the client starts anew", async () => {
    const pr = freshPr();
    const alice = await openRaw(gateway(pr));
    const { sid, pid } = await connectWith(alice, {});
    await call(alice, "join-pr-room", { pullRequestId: pr, username: "alice" });
    await drop(alice);
    const bob = await member(gateway, pr, "bob");
    // MAX_REPLAY_BYTES is 16384 in vitest.config.ts: 30 messages of 700 characters exceed it.
    for (let i = 0; i < 30; i++) await say(bob, pr, `${i} ${"x".repeat(700)}`);
    const back = await openRaw(gateway(pr));
    expect((await connectWith(back, { pid })).sid).not.toBe(sid);
    back.close();
    bob.close();
  });

  it.each(PATHS)("on the %s path, a connection resumes at most MAX_RESUMES_PER_MINUTE times a minute", async (_, queryFor) => {
    const pr = freshPr();
    const alice = await openRaw(queryFor(pr));
    const { sid, pid } = await connectWith(alice, {});
    await call(alice, "join-pr-room", { pullRequestId: pr, username: "alice" });
    let current = alice;
    // MAX_RESUMES_PER_MINUTE is 10 (the default).
    for (let i = 0; i < 10; i++) {
      await drop(current);
      current = await openRaw(queryFor(pr));
      expect(await connectWith(current, { pid })).toEqual({ sid, pid });
    }
    await drop(current);
    const refused = await openRaw(queryFor(pr));
    expect((await connectWith(refused, { pid })).sid).not.toBe(sid);
    refused.close();
  });
});

describe("links a gateway connection holds", () => {
  it("go once the room closed them: a join/leave loop does not pile them up", async () => {
    const pr = freshPr();
    const client = await openRaw(gateway(pr));
    const { sid } = await connectWith(client, {});
    const rooms = faultTargets.get(sid)! as unknown as { tracked: Set<unknown> };
    for (let i = 0; i < 8; i++) {
      expect(await call(client, "join-pr-room", { pullRequestId: pr, username: "alice" })).toMatchObject({ ok: true });
      expect(await call(client, "leave-pr-room", { pullRequestId: pr, username: "alice" })).toMatchObject({ ok: true });
    }
    await until(() => rooms.tracked.size === 0, 3000, "the left links to finish");
    client.close();
  });

  it("refuse a join while MAX_CLOSING_LINKS rooms are still closing", async () => {
    const pr = freshPr();
    const client = await openRaw(gateway(pr));
    const { sid } = await connectWith(client, {});
    const rooms = faultTargets.get(sid)! as GatewayRooms;
    const tracked = (rooms as unknown as { tracked: Set<unknown> }).tracked;
    for (let i = 0; i < MAX_CLOSING_LINKS; i++) tracked.add({ finished: false, settled: true });
    expect(await call(client, "join-pr-room", { pullRequestId: pr, username: "alice" })).toMatchObject({
      ok: false,
      error: { code: "too_many_rooms" },
    });
    tracked.clear();
    expect(await call(client, "join-pr-room", { pullRequestId: pr, username: "alice" })).toMatchObject({ ok: true });
    client.close();
  });
});

describe("what a room keeps in memory", () => {
  it("forgets a user's typing budget once the user has left", async () => {
    const pr = freshPr();
    const alice = await member(gateway, pr, "alice");
    expect(await call(alice, "typing", { pullRequestId: pr, username: "alice" })).toMatchObject({ ok: true });
    const stub = env.PR_ROOM.getByName(`pr:${pr}`);
    const budgets = () => runInDurableObject(stub, (room: PrRoom) => (room as unknown as { typingBudgets: Map<string, unknown> }).typingBudgets.size);
    expect(await budgets()).toBe(1);
    await drop(alice);
    // PRESENCE_GRACE_MS is 300: after it, alice has left.
    await until(async () => (await budgets()) === 0, 3000, "the budget to go");
  });
});

describe("a direct connection with a bad pullRequestId", () => {
  it("gets a Socket.IO CONNECT_ERROR (invalid_payload) over its WebSocket, not a bare HTTP 400", async () => {
    const client = await openRaw("EIO=4&transport=websocket&pullRequestId=not-a-number");
    await client.next(); // the open packet: a session, so the refusal can be a Socket.IO one
    client.send("40");
    const reply = (await client.next()) as string;
    expect(reply.startsWith("44")).toBe(true);
    expect(JSON.parse(reply.slice(2))).toMatchObject({ message: expect.stringContaining("pullRequestId"), data: { code: "invalid_payload" } });
    client.close();
  });
});

describe("the room's in-memory deadlines", () => {
  it("a short one (an event held for its join) runs on a timer, which keeps the room from hibernating until then", async () => {
    // An alarm that never fires: only the timer can run it.
    const timers = new RoomTimers({ wake() {} } as unknown as Alarm, new ObjectMeter("room_stats", () => ({})));
    let ran = false;
    timers.after(50, () => (ran = true));
    await until(() => ran, 1000, "the held event's deadline");
  });

  it("a long one (a token's expiry) leaves the room free to hibernate: the alarm runs it, and the room sets it again on waking", async () => {
    const timers = new RoomTimers({ wake() {} } as unknown as Alarm, new ObjectMeter("room_stats", () => ({})));
    let ran = false;
    timers.after(60_000, () => (ran = true));
    expect(timers.next()).toBeGreaterThan(Date.now());
    timers.runDue(Date.now() + 60_000);
    expect(ran).toBe(true);
  });
});

describe("an idempotent send", () => {
  it("gets its first answer, not a second broadcast, even after its message was pruned from the log by count", async () => {
    const pr = freshPr();
    const bob = await member(gateway, pr, "bob");
    const send = (message: string, clientMessageId: string) =>
      call(bob, "send-message-to-pr-room", { pullRequestId: pr, username: "bob", message, clientMessageId });
    const first = await send("the original", "resend-me");
    expect(first).toMatchObject({ ok: true, seq: 1 });
    // RECOVERY_MAX_MESSAGES is 40: 48 more push the original out of the log, well within the
    // 3 s window (three senders, so the rate limit does not slow them down).
    const others = await Promise.all(["carol", "dave"].map((name) => member(gateway, pr, name)));
    await Promise.all(
      [bob, ...others].map(async (client, index) => {
        const username = ["bob", "carol", "dave"][index];
        for (let i = 0; i < 16; i++) await call(client, "send-message-to-pr-room", { pullRequestId: pr, username, message: `filler ${i}` });
      }),
    );
    const stub = env.PR_ROOM.getByName(`pr:${pr}`);
    await runDurableObjectAlarm(stub);
    expect(await runInDurableObject(stub, (room: PrRoom) => (room as unknown as { log: { size: number } }).log.size)).toBeLessThanOrEqual(44);
    expect(await send("the original", "resend-me")).toEqual(first);
    bob.close();
    for (const other of others) other.close();
  });
});
