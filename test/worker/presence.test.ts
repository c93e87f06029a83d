/**
 * Presence and typing per person inside workerd, on both paths: users on join and on
 * request, arrivals and departures once per person, a grace period for reloads and
 * blips (PRESENCE_GRACE_MS is 300 ms in tests), hibernation, and typing across tabs.
 */
import { env } from "cloudflare:workers";
import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { never, until } from "../shared/until.js";
import { call, member, openRaw, PATHS, RawClient } from "./raw-client.js";

let nextPr = 42_000;
const freshPr = () => nextPr++;

/** Every event of `name` the client gets, as they come. */
function watch(client: RawClient, name: string): any[] {
  const seen: any[] = [];
  void (async () => {
    for (;;) {
      try {
        seen.push((await client.nextEvent(name, 60_000))[1]);
      } catch {
        return;
      }
    }
  })();
  return seen;
}

describe.each(PATHS)("presence on the %s path", (path, queryFor) => {
  it("acks a join with who is here, answers get-pr-room-users, and refuses it outside the room", async () => {
    const pr = freshPr();
    const bob = await member(queryFor, pr, "bob");
    const alice = await openRaw(queryFor(pr));
    await alice.connect();
    expect(await call(alice, "get-pr-room-users", { pullRequestId: pr })).toEqual({
      ok: false,
      error: { code: "not_joined", message: expect.stringContaining(`pr:${pr}`) },
    });
    expect(await call(alice, "join-pr-room", { pullRequestId: pr, username: "alice" })).toEqual({
      ok: true,
      pullRequestId: pr,
      members: 2,
      users: ["alice", "bob"],
      seq: 0,
    });
    expect(await call(bob, "get-pr-room-users", { pullRequestId: `0${pr}` })).toEqual({ ok: true, pullRequestId: pr, users: ["alice", "bob"] });
    expect((await call(bob, "get-pr-room-users", { pullRequestId: "x" })).error.code).toBe("invalid_payload");
    alice.close();
    bob.close();
  });

  it("announces a person once, not per tab; and a tab closing while another stays, not at all", async () => {
    const pr = freshPr();
    const bob = await member(queryFor, pr, "bob");
    const joined = watch(bob, "pr-room-user-joined");
    const left = watch(bob, "pr-room-user-left");
    const tab1 = await member(queryFor, pr, "alice");
    const tab2 = await member(queryFor, pr, "alice");
    await until(() => joined.length === 1, 2000, "alice's arrival");
    expect(joined).toEqual([{ pullRequestId: pr, username: "alice" }]);
    tab1.close();
    await never(() => left.length > 0, 600, "a departure while a tab stays");
    expect((await call(bob, "get-pr-room-users", { pullRequestId: pr })).users).toEqual(["alice", "bob"]);
    tab2.close();
    await until(() => left.length === 1, 3000, "alice's departure after the grace");
    expect(left).toEqual([{ pullRequestId: pr, username: "alice" }]);
    expect(joined).toHaveLength(1);
    bob.close();
  });

  it("announces nothing for a reload within the grace, and leave + join for one after it", async () => {
    const pr = freshPr();
    const bob = await member(queryFor, pr, "bob");
    const joined = watch(bob, "pr-room-user-joined");
    const left = watch(bob, "pr-room-user-left");
    const first = await member(queryFor, pr, "alice");
    await until(() => joined.length === 1, 2000, "alice's arrival");
    first.close();
    const reloaded = await member(queryFor, pr, "alice"); // well within 300 ms
    await never(() => left.length > 0 || joined.length > 1, 600, "an announcement for a reload");
    reloaded.close();
    await until(() => left.length === 1, 3000, "alice's departure");
    const later = await member(queryFor, pr, "alice");
    await until(() => joined.length === 2, 2000, "alice's second arrival");
    expect(left).toEqual([{ pullRequestId: pr, username: "alice" }]);
    later.close();
    bob.close();
  });

  it.each([
    ["leave-pr-room", (client: RawClient, pr: number) => client.emit("leave-pr-room", { pullRequestId: pr, username: "alice" })],
    ["Socket.IO DISCONNECT", (client: RawClient) => client.send("41")],
    ["Engine.IO close", (client: RawClient) => client.send("1")],
    ["WebSocket close", (client: RawClient) => client.close()],
  ])("announces a departure by %s after the grace, and the user is gone from the list", async (_how, end) => {
    const pr = freshPr();
    const bob = await member(queryFor, pr, "bob");
    const left = watch(bob, "pr-room-user-left");
    const alice = await member(queryFor, pr, "alice");
    end(alice, pr);
    await until(() => left.length === 1, 3000, "the departure");
    expect((await call(bob, "get-pr-room-users", { pullRequestId: pr })).users).toEqual(["bob"]);
    alice.close();
    bob.close();
  });

  it("announces a departure for a connection that vanished without a close (pings unanswered)", async () => {
    const pr = freshPr();
    const bob = await member(queryFor, pr, "bob");
    const left = watch(bob, "pr-room-user-left");
    const ghost = await member(queryFor, pr, "ghost");
    ghost.autoPong = false;
    await until(() => left.length === 1, 4000, "the ghost's departure");
    expect(left).toEqual([{ pullRequestId: pr, username: "ghost" }]);
    bob.close();
  });

  it("keeps presence across hibernation between a join and a leave", async () => {
    const pr = freshPr();
    const bob = await member(queryFor, pr, "bob");
    const alice = await member(queryFor, pr, "alice");
    const left = watch(bob, "pr-room-user-left");
    await evictDurableObject(env.PR_ROOM.getByName(`pr:${pr}`), { webSockets: "hibernate" });
    expect((await call(bob, "get-pr-room-users", { pullRequestId: pr })).users).toEqual(["alice", "bob"]);
    alice.emit("leave-pr-room", { pullRequestId: pr, username: "alice" });
    await until(() => left.length === 1, 3000, "alice's departure after hibernation");
    expect((await call(bob, "get-pr-room-users", { pullRequestId: pr })).users).toEqual(["bob"]);
    alice.close();
    bob.close();
  });

  it("types per person: other tabs of the typist hear nothing, stop-typing only when no tab types", async () => {
    const pr = freshPr();
    const bob = await member(queryFor, pr, "bob");
    const tab1 = await member(queryFor, pr, "alice");
    const tab2 = await member(queryFor, pr, "alice");
    const typingAtBob = watch(bob, "typing");
    const stopsAtBob = watch(bob, "stop-typing");
    const typingAtTab2 = watch(tab2, "typing");
    expect(await call(tab1, "typing", { pullRequestId: pr, username: "alice" })).toEqual({ ok: true });
    expect(await call(tab2, "typing", { pullRequestId: pr, username: "alice" })).toEqual({ ok: true });
    await until(() => typingAtBob.length === 2, 2000, "both typing notices at bob");
    expect(await call(tab1, "stop-typing", { pullRequestId: pr, username: "alice" })).toEqual({ ok: true });
    tab1.close(); // one tab closing does not stop the other's typing
    await never(() => stopsAtBob.length > 0, 400, "stop-typing while a tab still types");
    expect(await call(tab2, "stop-typing", { pullRequestId: pr, username: "alice" })).toEqual({ ok: true });
    await until(() => stopsAtBob.length === 1, 2000, "stop-typing once no tab types");
    expect(stopsAtBob).toEqual([{ pullRequestId: pr, username: "alice" }]);
    expect(typingAtTab2).toEqual([]);
    tab2.close();
    bob.close();
  });

  it("survives a restart of the room's object: who was here comes back without a word, who did not is announced gone", async () => {
    const pr = freshPr();
    const bob = await member(queryFor, pr, "bob");
    const joinedBefore = watch(bob, "pr-room-user-joined");
    const alice = await member(queryFor, pr, "alice");
    await until(() => joinedBefore.length === 1, 2000, "alice's arrival");
    await evictDurableObject(env.PR_ROOM.getByName(`pr:${pr}`), { webSockets: "close" });
    // A gateway link comes back by itself; a direct client reconnects (here: alice does, carol never was).
    const direct = path === "direct";
    const watcher = direct ? await member(queryFor, pr, "carol") : bob;
    // On the gateway path bob keeps watching: only what comes after the restart counts.
    if (!direct) joinedBefore.length = 0;
    const joined = direct ? watch(watcher, "pr-room-user-joined") : joinedBefore;
    const left = watch(watcher, "pr-room-user-left");
    const aliceAgain = direct ? await member(queryFor, pr, "alice") : alice;
    if (!direct) {
      // bob stays: nobody is announced gone.
      await never(() => left.length > 0, 800, "a departure after the restart");
      expect((await call(bob, "get-pr-room-users", { pullRequestId: pr })).users).toEqual(["alice", "bob"]);
    } else {
      // bob's direct socket died with the object and he did not come back: gone after the grace.
      await until(() => left.length === 1, 3000, "bob's departure");
      expect(left).toEqual([{ pullRequestId: pr, username: "bob" }]);
      expect((await call(aliceAgain, "get-pr-room-users", { pullRequestId: pr })).users).toEqual(["alice", "carol"]);
    }
    expect(joined.filter((notice) => notice.username === "alice")).toEqual([]);
    for (const client of [bob, alice, aliceAgain, watcher]) client.close();
  });
});
