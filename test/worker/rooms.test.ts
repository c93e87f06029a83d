/** The chat namespace and PrRoom inside workerd: room rules, error codes, typing, hibernation. */
import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { PrRoomError, PrRoomMessage } from "../../src/chat/events.js";
import type { PrRoom } from "../../src/room/pr-room.js";
import { never, until } from "../shared/until.js";
import { call, connectedRaw, member, PATHS, RawClient } from "./raw-client.js";

let nextPr = 1000;
/** A fresh pull request per test: storage is shared within this file. */
const freshPr = () => nextPr++;

/** This file's clients take the gateway path (no room in the URL). */
const gateway = PATHS[0][1];

/** Who the room says is in it now (users in their presence grace included). */
async function usersIn(pr: number | string): Promise<string[]> {
  return (await env.PR_ROOM.getByName(`pr:${pr}`).info()).users;
}

/** Waits until the room's users are exactly `users` (presence grace is short in tests). */
async function untilUsers(pr: number | string, users: string[]): Promise<void> {
  let seen: string[] = [];
  const what = () => `users ${JSON.stringify(users)} (the room has ${JSON.stringify(seen)})`;
  await until(async () => JSON.stringify((seen = await usersIn(pr))) === JSON.stringify(users), 4000, what, 20);
}

/**
 * The events `client` gets before the message `marker` (sent after the action under test, on
 * a path whose order guarantees that anything the action caused arrives first): "nothing else
 * came" checked by order, not by waiting a while.
 */
async function eventsBefore(client: RawClient, marker: string): Promise<Array<[string, any]>> {
  const seen: Array<[string, any]> = [];
  for (;;) {
    const event = await client.nextEvent(undefined, 5000);
    if (event[0] === "pr-room-message" && event[1].message === marker) return seen;
    seen.push(event);
  }
}

describe("join and members", () => {
  it("acks with the distinct users, sorted, and their count; join is idempotent", async () => {
    const pr = freshPr();
    const { client: a } = await connectedRaw();
    expect(await call(a, "join-pr-room", { pullRequestId: pr, username: "alice" })).toEqual({
      ok: true,
      pullRequestId: pr,
      members: 1,
      users: ["alice"],
      seq: 0,
    });
    expect(await call(a, "join-pr-room", { pullRequestId: pr, username: "alice" })).toMatchObject({ members: 1 });
    const b = await member(gateway, String(pr), "bob");
    // The same user from a second connection (another tab) is still one member.
    const { client: a2 } = await connectedRaw();
    expect(await call(a2, "join-pr-room", { pullRequestId: `00${pr}`, username: "alice" })).toMatchObject({
      members: 2,
      users: ["alice", "bob"],
    });
    b.close();
    // Gone once its presence grace is over.
    await untilUsers(pr, ["alice"]);
    expect(await call(a, "join-pr-room", { pullRequestId: pr, username: "alice" })).toMatchObject({ members: 1, users: ["alice"] });
    a.close();
    a2.close();
  });
});

describe("messages", () => {
  it("broadcasts to every member, the sender included, and acks with the id", async () => {
    const pr = freshPr();
    const a = await member(gateway, pr, "alice");
    const b = await member(gateway, pr, "bob");
    const ack = await call(a, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "LGTM" });
    expect(ack).toEqual({ ok: true, id: expect.any(String), seq: 1 });
    for (const client of [a, b]) {
      const [, payload] = await client.nextEvent("pr-room-message");
      expect(PrRoomMessage.parse(payload)).toEqual({
        pullRequestId: pr,
        username: "alice",
        message: "LGTM",
        id: ack.id,
        seq: 1,
        sentAt: expect.any(Number),
        mentions: [],
      });
    }
    a.close();
    b.close();
  });

  it("keeps rooms apart", async () => {
    const [p1, p2] = [freshPr(), freshPr()];
    const a = await member(gateway, p1, "alice");
    const c = await member(gateway, p2, "carol");
    await call(a, "send-message-to-pr-room", { pullRequestId: p1, username: "alice", message: "only p1" });
    // The marker goes through p1's room too (a joins p2 after its send), so it is ordered after
    // "only p1" there; in p2, c must see nothing but the marker.
    await call(a, "join-pr-room", { pullRequestId: p2, username: "alice" });
    await call(a, "send-message-to-pr-room", { pullRequestId: p2, username: "alice", message: "marker" });
    expect((await eventsBefore(c, "marker")).filter(([name]) => name === "pr-room-message")).toEqual([]);
    a.close();
    c.close();
  });

  it("gives the leaver nothing more, and leave is idempotent", async () => {
    const pr = freshPr();
    const a = await member(gateway, pr, "alice");
    const b = await member(gateway, pr, "bob");
    expect(await call(b, "leave-pr-room", { pullRequestId: pr, username: "bob" })).toEqual({ ok: true, pullRequestId: pr });
    expect(await call(b, "leave-pr-room", { pullRequestId: pr, username: "bob" })).toEqual({ ok: true, pullRequestId: pr });
    await call(a, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "still there?" });
    // No order joins b's connection to a room it left: a bounded window is the only check there is.
    await never(() => b.inboxHas((frame) => typeof frame === "string" && frame.includes("still there?")), 300, "a message to the leaver");
    expect(await call(b, "send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: "x" })).toMatchObject({
      ok: false,
      error: { code: "not_joined" },
    });
    a.close();
    b.close();
  });
});

describe("events just ahead of their join", () => {
  it("wait for a join that follows (socket.io-client flushes its buffer before `connect` handlers)", async () => {
    const pr = freshPr();
    const { client } = await connectedRaw();
    client.emit("send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "early" }, 1);
    client.emit("join-pr-room", { pullRequestId: pr, username: "alice" }, 2);
    expect(await client.ack(2)).toMatchObject({ ok: true, members: 1 });
    expect(await client.ack(1)).toMatchObject({ ok: true });
    expect((await client.nextEvent("pr-room-message"))[1]).toMatchObject({ username: "alice", message: "early" });
    client.close();
  });

  it("are refused when no join comes within JOIN_GRACE_MS, or the join is for another name", async () => {
    const pr = freshPr();
    const { client } = await connectedRaw();
    const sent = Date.now();
    client.emit("typing", { pullRequestId: pr, username: "alice" }, 1);
    expect((await client.ack(1)).error.code).toBe("not_joined");
    expect(Date.now() - sent).toBeGreaterThanOrEqual(150);
    client.emit("send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "early" }, 2);
    client.emit("join-pr-room", { pullRequestId: pr, username: "bob" }, 3);
    expect((await client.ack(2)).error.code).toBe("username_mismatch");
    client.close();
  });
});

describe("refusals", () => {
  const cases: Array<[string, string, unknown, string]> = [
    ["send before join", "send-message-to-pr-room", { pullRequestId: 1, username: "u", message: "hi" }, "not_joined"],
    ["typing before join", "typing", { pullRequestId: 1, username: "u" }, "not_joined"],
    ["unknown event", "delete-pr", { pullRequestId: 1 }, "unknown_event"],
    ["no payload", "join-pr-room", undefined, "invalid_payload"],
    ["payload not an object", "join-pr-room", "123", "invalid_payload"],
    ["pullRequestId missing", "join-pr-room", { username: "u" }, "invalid_payload"],
    ["pullRequestId zero", "join-pr-room", { pullRequestId: 0, username: "u" }, "invalid_payload"],
    ["pullRequestId \"0\"", "join-pr-room", { pullRequestId: "000", username: "u" }, "invalid_payload"],
    ["pullRequestId negative", "join-pr-room", { pullRequestId: -4, username: "u" }, "invalid_payload"],
    ["pullRequestId fraction", "join-pr-room", { pullRequestId: 1.5, username: "u" }, "invalid_payload"],
    ["pullRequestId not digits", "join-pr-room", { pullRequestId: "12a", username: "u" }, "invalid_payload"],
    ["pullRequestId huge", "join-pr-room", { pullRequestId: 1e300, username: "u" }, "invalid_payload"],
    ["pullRequestId object", "join-pr-room", { pullRequestId: { $gt: 1 }, username: "u" }, "invalid_payload"],
    ["username empty", "join-pr-room", { pullRequestId: 1, username: "   " }, "invalid_payload"],
    ["username too long", "join-pr-room", { pullRequestId: 1, username: "u".repeat(65) }, "invalid_payload"],
    ["username control chars", "join-pr-room", { pullRequestId: 1, username: "a\u0007b" }, "invalid_payload"],
    ["username number", "join-pr-room", { pullRequestId: 1, username: 42 }, "invalid_payload"],
  ];

  it.each(cases)("%s: ack gets { ok: false, error }", async (_, event, payload, code) => {
    const { client } = await connectedRaw();
    const ack = await call(client, event, payload);
    expect(ack).toEqual({ ok: false, error: { code, message: expect.any(String) } });
    expect(ack.error.message.length).toBeGreaterThan(5);
    // The connection is still good for real work.
    expect(await call(client, "join-pr-room", { pullRequestId: freshPr(), username: "after" })).toMatchObject({ ok: true });
    client.close();
  });

  it.each(cases)("%s: without an ack, pr-room-error", async (_, event, payload, code) => {
    const { client } = await connectedRaw();
    client.emit(event, payload);
    const [, body] = await client.nextEvent("pr-room-error");
    expect(PrRoomError.parse(body)).toMatchObject({ event, code });
    client.close();
  });

  it("refuses empty, blank, non-string and over-long messages, and a username other than the joined one", async () => {
    const pr = freshPr();
    const a = await member(gateway, pr, "alice");
    const b = await member(gateway, pr, "bob");
    const send = (payload: object) => call(a, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", ...payload });
    expect((await send({ message: "" })).error.code).toBe("invalid_payload");
    expect((await send({ message: " \n\t " })).error.code).toBe("invalid_payload");
    expect((await send({ message: 7 })).error.code).toBe("invalid_payload");
    expect((await send({ message: "x".repeat(4001) })).error).toEqual({
      code: "message_too_long",
      message: "message is 4001 characters; the limit is 4000",
    });
    expect((await send({ username: "mallory", message: "hi" })).error.code).toBe("username_mismatch");
    expect((await call(a, "join-pr-room", { pullRequestId: pr, username: "mallory" })).error.code).toBe("username_mismatch");
    // Nothing refused reached the room: the first message b gets is the one sent after them.
    expect((await send({ message: "x".repeat(4000) })).ok).toBe(true);
    expect((await b.nextEvent("pr-room-message"))[1].message).toBe("x".repeat(4000));
    a.close();
    b.close();
  });
});

describe("typing", () => {
  it("relays typing and stop-typing to the others, not the typist", async () => {
    const pr = freshPr();
    const a = await member(gateway, pr, "alice");
    const b = await member(gateway, pr, "bob");
    expect(await call(a, "typing", { pullRequestId: pr, username: "alice" })).toEqual({ ok: true });
    expect(await b.nextEvent("typing")).toEqual(["typing", { pullRequestId: pr, username: "alice" }]);
    a.emit("stop-typing", { pullRequestId: pr, username: "alice" });
    expect(await b.nextEvent("stop-typing")).toEqual(["stop-typing", { pullRequestId: pr, username: "alice" }]);
    await call(b, "send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: "marker" });
    // Neither its own typing nor its stop-typing came back to the typist.
    expect((await eventsBefore(a, "marker")).filter(([name]) => name === "typing" || name === "stop-typing")).toEqual([]);
    a.close();
    b.close();
  });

  it("expires a typing not renewed within TYPING_TIMEOUT_MS, by alarm", async () => {
    const pr = freshPr();
    const a = await member(gateway, pr, "alice");
    const b = await member(gateway, pr, "bob");
    const stub = env.PR_ROOM.getByName(`pr:${pr}`);
    a.emit("typing", { pullRequestId: pr, username: "alice" });
    await b.nextEvent("typing");
    const alarm = await runInDurableObject(stub, (_: PrRoom, state) => state.storage.getAlarm());
    expect(alarm).toBeGreaterThan(Date.now() + 1000);
    // An alarm that runs early expires nobody and re-arms itself.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await runInDurableObject(stub, (_: PrRoom, state) => state.storage.getAlarm())).toBe(alarm);
    // carol's arrival is the marker: anything the early alarm sent b came before it.
    const c = await member(gateway, pr, "carol");
    expect((await b.nextEvent())).toEqual(["pr-room-user-joined", { pullRequestId: pr, username: "carol" }]);
    // Then the real alarm fires at the deadline.
    const [, notice] = await b.nextEvent("stop-typing", 3000);
    expect(notice).toEqual({ pullRequestId: pr, username: "alice" });
    expect(await runInDurableObject(stub, (_: PrRoom, state) => state.storage.getAlarm())).toBeNull();
    a.close();
    b.close();
    c.close();
  });

  it("emits stop-typing when a typist leaves or disconnects", async () => {
    const pr = freshPr();
    const a = await member(gateway, pr, "alice");
    const b = await member(gateway, pr, "bob");
    const c = await member(gateway, pr, "carol");
    a.emit("typing", { pullRequestId: pr, username: "alice" });
    b.emit("typing", { pullRequestId: pr, username: "bob" });
    await c.nextEvent("typing");
    await c.nextEvent("typing");
    a.emit("leave-pr-room", { pullRequestId: pr, username: "alice" });
    expect((await c.nextEvent("stop-typing"))[1].username).toBe("alice");
    b.close();
    expect((await c.nextEvent("stop-typing"))[1].username).toBe("bob");
    c.close();
  });
});

describe("disconnects", () => {
  it("leaves every room the client joined, whatever ends the connection", async () => {
    const pr = freshPr();
    const watcher = await member(gateway, pr, "watcher");
    const endings: Array<(client: RawClient) => void> = [
      (client) => client.close(),
      (client) => client.send("41"), // Socket.IO DISCONNECT
      (client) => client.send("1"), // Engine.IO close
    ];
    for (const [index, end] of endings.entries()) {
      const guest = `guest${index}`;
      const { client } = await connectedRaw();
      expect(await call(client, "join-pr-room", { pullRequestId: pr, username: guest })).toMatchObject({ members: 2 });
      end(client);
      const [, left] = await watcher.nextEvent("pr-room-user-left", 3000);
      expect(left).toEqual({ pullRequestId: pr, username: guest });
      await untilUsers(pr, ["watcher"]);
    }
    watcher.close();
  });
});

describe("leaving at once", () => {
  it("leaves no ghost member when the leave comes while the link is still opening", async () => {
    const pr = freshPr();
    const watcher = await member(gateway, pr, "watcher");
    const { client } = await connectedRaw();
    for (let i = 0; i < 5; i++) {
      client.emit("join-pr-room", { pullRequestId: pr, username: "flicker" });
      client.emit("leave-pr-room", { pullRequestId: pr, username: "flicker" });
    }
    expect(await call(client, "leave-pr-room", { pullRequestId: pr, username: "flicker" })).toMatchObject({ ok: true });
    await untilUsers(pr, ["watcher"]);
    client.close();
    watcher.close();
  });

  it("still answers the leaver's own events sent before the leave", async () => {
    const pr = freshPr();
    const a = await member(gateway, pr, "alice");
    const b = await member(gateway, pr, "bob");
    b.emit("send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: "last words" }, 900);
    b.emit("leave-pr-room", { pullRequestId: pr, username: "bob" }, 901);
    expect(await b.ack(901)).toMatchObject({ ok: true });
    expect(await b.ack(900)).toMatchObject({ ok: true, id: expect.any(String) });
    expect((await a.nextEvent("pr-room-message"))[1]).toMatchObject({ username: "bob", message: "last words" });
    a.close();
    b.close();
  });
});

describe("a client that vanishes", () => {
  it("is removed from its rooms within pingInterval + pingTimeout, without a close frame", async () => {
    const pr = freshPr();
    const watcher = await member(gateway, pr, "watcher");
    const { client: ghost } = await connectedRaw();
    expect(await call(ghost, "join-pr-room", { pullRequestId: pr, username: "ghost" })).toMatchObject({ members: 2 });
    ghost.emit("typing", { pullRequestId: pr, username: "ghost" });
    await watcher.nextEvent("typing");
    const vanished = Date.now();
    ghost.autoPong = false; // silent from now on: no pongs, no close
    const [, notice] = await watcher.nextEvent("stop-typing", 2000);
    expect(notice.username).toBe("ghost");
    expect(Date.now() - vanished).toBeLessThanOrEqual(300 + 200 + 300);
    await untilUsers(pr, ["watcher"]);
    watcher.close();
  });
});

describe("several rooms on one connection", () => {
  it("keeps a link per room; payloads say which room", async () => {
    const [p1, p2] = [freshPr(), freshPr()];
    const { client } = await connectedRaw();
    await call(client, "join-pr-room", { pullRequestId: p1, username: "alice" });
    await call(client, "join-pr-room", { pullRequestId: p2, username: "alice" });
    const other = await member(gateway, p2, "bob");
    await call(client, "send-message-to-pr-room", { pullRequestId: p1, username: "alice", message: "one" });
    await call(other, "send-message-to-pr-room", { pullRequestId: p2, username: "bob", message: "two" });
    const got = [(await client.nextEvent("pr-room-message"))[1], (await client.nextEvent("pr-room-message"))[1]].map((m) => [m.pullRequestId, m.message]);
    expect(got).toEqual([
      [p1, "one"],
      [p2, "two"],
    ]);
    client.close();
    other.close();
  });
});

describe("hibernation and eviction", () => {
  it("loses nothing when the room hibernates", async () => {
    const pr = freshPr();
    const a = await member(gateway, pr, "alice");
    const b = await member(gateway, pr, "bob");
    const stub = env.PR_ROOM.getByName(`pr:${pr}`);
    await evictDurableObject(stub, { webSockets: "hibernate" });
    await call(b, "send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: "after sleep" });
    for (const client of [a, b]) {
      const [, m] = await client.nextEvent("pr-room-message");
      expect([m.username, m.message]).toEqual(["bob", "after sleep"]);
    }
    expect(await call(a, "join-pr-room", { pullRequestId: pr, username: "alice" })).toMatchObject({ members: 2 });
    a.close();
    b.close();
  });

  it("re-opens the links by itself when the room is evicted and its sockets closed", async () => {
    const pr = freshPr();
    const a = await member(gateway, pr, "alice");
    const b = await member(gateway, pr, "bob");
    const stub = env.PR_ROOM.getByName(`pr:${pr}`);
    await evictDurableObject(stub, { webSockets: "close" });
    expect(await call(a, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "back" })).toMatchObject({
      ok: true,
    });
    for (const client of [a, b]) {
      const [, m] = await client.nextEvent("pr-room-message");
      expect([m.username, m.message]).toEqual(["alice", "back"]);
    }
    expect(await call(a, "join-pr-room", { pullRequestId: pr, username: "alice" })).toMatchObject({ members: 2 });
    a.close();
    b.close();
  });
});
