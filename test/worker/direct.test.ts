/**
 * The direct path inside workerd: the client's socket lives in its room's object, which
 * pings from one alarm, lets the runtime answer pongs, judges liveness from the
 * auto-response timestamps, hibernates between messages, and keeps a direct connection
 * to its own pull request.
 */
import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { PrRoom } from "../../src/room/pr-room.js";
import { call, member, openRaw, PATHS } from "./raw-client.js";

let nextPr = 43_000;
const freshPr = () => nextPr++;
const direct = PATHS[1][1];
const PING_INTERVAL = 300; // vitest.config.ts
const PING_TIMEOUT = 200;

describe("the direct path", () => {
  it("opens with the configured timings and no upgrades, like the gateway", async () => {
    const client = await openRaw(direct(freshPr()));
    const open = JSON.parse(((await client.next()) as string).slice(1));
    expect(open).toEqual({ sid: expect.any(String), upgrades: [], pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT, maxPayload: 65536 });
    client.close();
  });

  it("refuses a pullRequestId that is not one at CONNECT, over the WebSocket (a bare 400 would leave the client retrying)", async () => {
    const client = await openRaw("EIO=4&transport=websocket&pullRequestId=abc");
    await client.next(); // open packet
    client.send("40");
    const reply = (await client.next()) as string;
    expect(JSON.parse(reply.slice(2))).toEqual({ message: expect.stringContaining("pullRequestId"), data: { code: "invalid_payload" } });
    client.close();
  });

  it("pings from the room's alarm; the runtime answers pongs (with a noop) and an idle client stays", async () => {
    const pr = freshPr();
    const client = await member(direct, pr, "alice");
    client.skipNoops = false;
    client.autoPong = false; // answered here, so the test sees the pings
    const started = Date.now();
    const frames: string[] = [];
    while (Date.now() - started < 4 * (PING_INTERVAL + PING_TIMEOUT)) {
      const frame = await client.next({ timeoutMs: 2000 });
      if (typeof frame === "string") frames.push(frame);
      if (frame === "2") client.send("3");
    }
    // About one ping per interval, each pong answered by the runtime with "6", never a close.
    const pings = frames.filter((frame) => frame === "2").length;
    expect(pings).toBeGreaterThanOrEqual(4);
    expect(pings).toBeLessThanOrEqual(9);
    expect(frames.filter((frame) => frame === "6").length).toBeGreaterThanOrEqual(pings - 1);
    expect(client.closed).toBeUndefined();
    // One alarm for the whole room: it is set one interval after the last round, not per client.
    const alarm = await runInDurableObject(env.PR_ROOM.getByName(`pr:${pr}`), (_: PrRoom, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm! - Date.now()).toBeLessThanOrEqual(PING_INTERVAL + 50);
    client.close();
  });

  it("drops a client that stops answering at the next round after the ping it left unanswered", async () => {
    const pr = freshPr();
    const bob = await member(direct, pr, "bob");
    const ghost = await member(direct, pr, "ghost");
    ghost.autoPong = false;
    let pingedAt = 0;
    while (pingedAt === 0) {
      if ((await ghost.next({ timeoutMs: 2000 })) === "2") pingedAt = Date.now();
    }
    const closed = await ghost.waitClosed(3000);
    expect(Date.now() - pingedAt).toBeGreaterThanOrEqual(PING_TIMEOUT);
    expect(Date.now() - pingedAt).toBeLessThanOrEqual(PING_INTERVAL + 150);
    expect(closed.reason).toContain("ping timeout");
    // The room noticed: bob hears the ghost leave after the grace, and is still connected.
    const [, left] = await bob.nextEvent("pr-room-user-left", 3000);
    expect(left.username).toBe("ghost");
    expect(bob.closed).toBeUndefined();
    bob.close();
  });

  it("hibernates between messages and the client notices nothing", async () => {
    const pr = freshPr();
    const alice = await member(direct, pr, "alice");
    const bob = await member(direct, pr, "bob");
    const stub = env.PR_ROOM.getByName(`pr:${pr}`);
    for (let round = 0; round < 3; round++) {
      await evictDurableObject(stub, { webSockets: "hibernate" });
      const ack = await call(bob, "send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: `after sleep ${round}` });
      expect(ack).toMatchObject({ ok: true, seq: round + 1 });
      for (const client of [alice, bob]) expect((await client.nextEvent("pr-room-message"))[1].message).toBe(`after sleep ${round}`);
    }
    // Its name, its typing, its place in the room: all kept in the socket's attachment.
    expect(await call(alice, "typing", { pullRequestId: pr, username: "alice" })).toEqual({ ok: true });
    await evictDurableObject(stub, { webSockets: "hibernate" });
    expect((await bob.nextEvent("typing"))[1].username).toBe("alice");
    expect(await call(alice, "join-pr-room", { pullRequestId: pr, username: "alice" })).toMatchObject({ users: ["alice", "bob"] });
    expect((await call(alice, "send-message-to-pr-room", { pullRequestId: pr, username: "mallory", message: "x" })).error.code).toBe("username_mismatch");
    expect(alice.closed).toBeUndefined();
    alice.close();
    bob.close();
  });

  it("keeps a direct connection to its own pull request: another is refused room_mismatch, by ack and by pr-room-error", async () => {
    const [pr, other] = [freshPr(), freshPr()];
    const alice = await member(direct, pr, "alice");
    const refused = await call(alice, "join-pr-room", { pullRequestId: other, username: "alice" });
    expect(refused).toEqual({ ok: false, error: { code: "room_mismatch", message: expect.stringContaining(`pr:${pr}`) } });
    alice.emit("join-pr-room", { pullRequestId: other, username: "alice" });
    const [, error] = await alice.nextEvent("pr-room-error");
    expect(error).toMatchObject({ event: "join-pr-room", pullRequestId: other, code: "room_mismatch" });
    expect((await call(alice, "send-message-to-pr-room", { pullRequestId: other, username: "alice", message: "x" })).error.code).toBe("not_joined");
    expect(await call(alice, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "still here" })).toMatchObject({ ok: true });
    alice.close();
  });

  it("can leave its room and join it again on the same connection", async () => {
    const pr = freshPr();
    const alice = await member(direct, pr, "alice");
    expect(await call(alice, "leave-pr-room", { pullRequestId: pr, username: "alice" })).toEqual({ ok: true, pullRequestId: pr });
    expect((await call(alice, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "x" })).error.code).toBe("not_joined");
    expect(await call(alice, "join-pr-room", { pullRequestId: pr, username: "alicia" })).toMatchObject({ ok: true });
    expect(await call(alice, "send-message-to-pr-room", { pullRequestId: pr, username: "alicia", message: "renamed" })).toMatchObject({ ok: true });
    alice.close();
  });

  it("reaches the same room as gateway members: one fan-out for both", async () => {
    const pr = freshPr();
    const viaGateway = await member(PATHS[0][1], pr, "gina");
    const viaDirect = await member(direct, pr, "dora");
    await call(viaGateway, "send-message-to-pr-room", { pullRequestId: pr, username: "gina", message: "from the gateway" });
    await call(viaDirect, "send-message-to-pr-room", { pullRequestId: pr, username: "dora", message: "from the room" });
    for (const client of [viaGateway, viaDirect]) {
      const got = [(await client.nextEvent("pr-room-message"))[1].message, (await client.nextEvent("pr-room-message"))[1].message];
      expect(got).toEqual(["from the gateway", "from the room"]);
    }
    viaGateway.close();
    viaDirect.close();
  });
});
