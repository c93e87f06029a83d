/**
 * Connection state recovery frame by frame inside workerd, on both paths: the CONNECT
 * answer's pid, offsets on room events, replay of exactly what was missed, and every
 * way a recovery must fail closed (a fresh connection, never a half or foreign replay).
 */
import { env } from "cloudflare:workers";
import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { until } from "../shared/until.js";
import { call, connectWith, member, nextMessage, openRaw, PATHS, type QueryFor } from "./raw-client.js";

let nextPr = 41_000;
const freshPr = () => nextPr++;

/** A member that keeps what recovery needs: its pid, its Socket.IO id and the last offset it got. */
async function recoverableMember(queryFor: QueryFor, pr: number, username: string) {
  const client = await openRaw(queryFor(pr));
  const connect = await connectWith(client, {});
  expect(await call(client, "join-pr-room", { pullRequestId: pr, username })).toMatchObject({ ok: true });
  return { client, sid: connect.sid, pid: connect.pid! };
}

describe.each(PATHS)("recovery frame by frame on the %s path", (_, queryFor) => {
  it("answers CONNECT with a pid, and tags room messages with the room's offset", async () => {
    const pr = freshPr();
    const alice = await recoverableMember(queryFor, pr, "alice");
    expect(alice.pid).toMatch(/^[\w-]{40}$/);
    await call(alice.client, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "hi" });
    const [payload, offset] = await nextMessage(alice.client);
    expect(payload).toMatchObject({ seq: 1, message: "hi" });
    expect(offset).toBe(`${pr}:1`);
    alice.client.close();
  });

  it("replays exactly what was missed, in order, before anything newer, with the same socket id", async () => {
    const pr = freshPr();
    const alice = await recoverableMember(queryFor, pr, "alice");
    const bob = await member(queryFor, pr, "bob");
    const say = (message: string) => call(bob, "send-message-to-pr-room", { pullRequestId: pr, username: "bob", message });
    await say("seen");
    const [, offset] = await nextMessage(alice.client);
    alice.client.close();
    await alice.client.waitClosed().catch(() => undefined);
    await say("missed 1");
    await say("missed 2");

    const back = await openRaw(queryFor(pr));
    expect(await connectWith(back, { pid: alice.pid, offset })).toEqual({ sid: alice.sid, pid: alice.pid });
    await say("newer");
    const got = [];
    for (let i = 0; i < 3; i++) got.push((await nextMessage(back))[0]);
    expect(got.map((m) => [m.message, m.seq])).toEqual([["missed 1", 2], ["missed 2", 3], ["newer", 4]]);
    // Back in the room with its name: it can speak without joining again.
    expect(await call(back, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "I'm back" })).toMatchObject({ ok: true });
    back.close();
    bob.close();
  });

  it("without an offset (nothing received yet), replays everything since the join, and nothing before it", async () => {
    const pr = freshPr();
    const bob = await member(queryFor, pr, "bob");
    await call(bob, "send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: "before alice joined" });
    const alice = await recoverableMember(queryFor, pr, "alice");
    alice.client.close();
    await alice.client.waitClosed().catch(() => undefined);
    await call(bob, "send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: "while away" });
    const back = await openRaw(queryFor(pr));
    expect((await connectWith(back, { pid: alice.pid })).sid).toBe(alice.sid);
    expect((await nextMessage(back))[0].message).toBe("while away");
    back.close();
    bob.close();
  });

  it.each([
    ["a pid of the wrong shape", { pid: "short" }],
    ["a pid that is a number", { pid: 12345 }],
    ["a pid nobody was given", { pid: "A".repeat(40) }],
  ])("treats %s as a fresh connection", async (_what, auth) => {
    const pr = freshPr();
    const back = await openRaw(queryFor(pr));
    const connect = await connectWith(back, { ...auth, offset: `${pr}:1` });
    expect(connect.pid).toMatch(/^[\w-]{40}$/);
    expect(connect.pid).not.toBe((auth as { pid: unknown }).pid);
    // A fresh connection is in no room.
    expect((await call(back, "send-message-to-pr-room", { pullRequestId: pr, username: "x", message: "y" })).error.code).toBe("not_joined");
    back.close();
  });

  it.each([
    ["an offset that is not ours", "banana"],
    ["an offset that is a number", 7],
    ["an offset beyond the room's last message", "PR:99"],
    ["an offset with a malformed pair", "PR:1:2"],
  ])("refuses to recover with %s: a fresh connection, no replay", async (_what, offsetTemplate) => {
    const pr = freshPr();
    const alice = await recoverableMember(queryFor, pr, "alice");
    const bob = await member(queryFor, pr, "bob");
    await call(bob, "send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: "one" });
    alice.client.close();
    await alice.client.waitClosed().catch(() => undefined);
    const offset = typeof offsetTemplate === "string" ? offsetTemplate.replace("PR", String(pr)) : offsetTemplate;
    const back = await openRaw(queryFor(pr));
    const connect = await connectWith(back, { pid: alice.pid, offset });
    expect(connect.sid).not.toBe(alice.sid);
    expect(connect.pid).not.toBe(alice.pid);
    await call(bob, "send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: "two" });
    // Not in the room any more: nothing arrives until it joins again, and then only newer messages.
    expect(await call(back, "join-pr-room", { pullRequestId: pr, username: "alice" })).toMatchObject({ ok: true });
    await call(bob, "send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: "three" });
    expect((await nextMessage(back))[0].message).toBe("three");
    back.close();
    bob.close();
  });

  it("never replays another room's messages, whatever the offset names", async () => {
    const [pr, other] = [freshPr(), freshPr()];
    const alice = await recoverableMember(queryFor, pr, "alice");
    const carol = await member(queryFor, other, "carol");
    await call(carol, "send-message-to-pr-room", { pullRequestId: other, username: "carol", message: "secret of the other room" });
    alice.client.close();
    await alice.client.waitClosed().catch(() => undefined);
    const back = await openRaw(queryFor(pr));
    expect((await connectWith(back, { pid: alice.pid, offset: `${other}:0` })).sid).toBe(alice.sid);
    await call(back, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "mine" });
    expect((await nextMessage(back))[0].message).toBe("mine");
    back.close();
    carol.close();
  });

  it("takes over from a half-dead old connection that the server still holds", async () => {
    const pr = freshPr();
    const alice = await recoverableMember(queryFor, pr, "alice");
    const bob = await member(queryFor, pr, "bob");
    alice.client.autoPong = false; // the old connection stays open but goes quiet
    const back = await openRaw(queryFor(pr));
    expect((await connectWith(back, { pid: alice.pid })).sid).toBe(alice.sid);
    await call(bob, "send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: "to the new one" });
    expect((await nextMessage(back))[0].message).toBe("to the new one");
    // One alice, not two: the room counts her once, and the old socket goes.
    expect(await call(bob, "get-pr-room-users", { pullRequestId: pr })).toMatchObject({ users: ["alice", "bob"] });
    await until(() => alice.client.closed !== undefined, 3000, "the old socket to be closed");
    back.close();
    bob.close();
  });

  it("refuses once the window has passed (RECOVERY_WINDOW_MS is 3 s in tests)", async () => {
    const pr = freshPr();
    const alice = await recoverableMember(queryFor, pr, "alice");
    alice.client.close();
    await alice.client.waitClosed().catch(() => undefined);
    const closedAt = Date.now();
    await until(() => Date.now() > closedAt + 3500, 5000, "the recovery window to pass");
    const back = await openRaw(queryFor(pr));
    expect((await connectWith(back, { pid: alice.pid })).sid).not.toBe(alice.sid);
    back.close();
  });
});

describe("recovery across a restart of the room's object", () => {
  it.each(PATHS)("on the %s path, the client comes back with what was said while the room restarted", async (_, queryFor) => {
    const pr = freshPr();
    const alice = await recoverableMember(queryFor, pr, "alice");
    await call(alice.client, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "before" });
    const [, offset] = await nextMessage(alice.client);
    alice.client.close();
    await alice.client.waitClosed().catch(() => undefined);
    // The room's object is evicted with its sockets, and everything in memory with it.
    await evictDurableObject(env.PR_ROOM.getByName(`pr:${pr}`), { webSockets: "close" });
    const bob = await member(queryFor, pr, "bob");
    await call(bob, "send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: "after the restart" });
    const back = await openRaw(queryFor(pr));
    expect(await connectWith(back, { pid: alice.pid, offset })).toEqual({ sid: alice.sid, pid: alice.pid });
    const [missed] = await nextMessage(back);
    expect([missed.message, missed.seq]).toEqual(["after the restart", 2]);
    back.close();
    bob.close();
  });
});

describe("recovery of a gateway connection in several rooms", () => {
  it("replays what was missed in every room, exactly once, from one offset naming them all", async () => {
    const [p1, p2, p3] = [freshPr(), freshPr(), freshPr()];
    const gateway = PATHS[0][1];
    const client = await openRaw(gateway(p1));
    const { sid, pid } = await connectWith(client, {});
    for (const pr of [p1, p2, p3]) await call(client, "join-pr-room", { pullRequestId: pr, username: "alice" });
    const others = await Promise.all([p1, p2, p3].map((pr) => member(gateway, pr, "bob")));
    const say = (index: number, message: string) =>
      call(others[index]!, "send-message-to-pr-room", { pullRequestId: [p1, p2, p3][index], username: "bob", message });
    await say(0, "a1");
    await say(1, "b1");
    await say(0, "a2");
    let offset: string | undefined;
    for (let i = 0; i < 3; i++) offset = (await nextMessage(client))[1];
    // Every room it is in, p3 too, where nothing was said since it joined (at seq 0).
    expect(offset?.split(",").sort()).toEqual([`${p1}:2`, `${p2}:1`, `${p3}:0`].sort());
    client.close();
    await client.waitClosed().catch(() => undefined);
    await say(1, "b2");
    await say(2, "c1");
    await say(0, "a3");

    const back = await openRaw(gateway(p1));
    expect(await connectWith(back, { pid, offset })).toEqual({ sid, pid });
    const got: string[] = [];
    for (let i = 0; i < 3; i++) got.push((await nextMessage(back))[0].message);
    expect(got.sort()).toEqual(["a3", "b2", "c1"]);
    await say(2, "c2");
    expect((await nextMessage(back))[0].message).toBe("c2");
    back.close();
    for (const other of others) other.close();
  });
});
