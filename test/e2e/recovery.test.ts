/**
 * Connection state recovery end to end: the real socket.io-client 4.8, unchanged,
 * against the Worker under `wrangler dev`, on both paths (gateway and direct).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PrRoomMessage } from "../../src/chat/events.js";
import { signToken } from "../shared/token.js";
import { client, closeAll, collect, connected, documentedMember, once, until } from "../support/client.js";
import { restartableWorker } from "../support/restartable.js";
import { paths } from "../support/paths.js";
import { serveWorker, type ServedWorker } from "../support/worker.js";

const SECRET = "recovery-test-secret-that-is-long-enough";

let worker: ServedWorker;
// Rooms from a random base: wrangler may keep room state between runs.
let nextPr = 1_000_000 + Math.floor(Math.random() * 1_000_000) * 100;
const freshPr = () => nextPr++;

beforeAll(async () => {
  // A grace long enough that a reconnect on a loaded machine stays inside it: "nobody noticed" is checked below.
  worker = await serveWorker({ vars: { RATE_LIMIT_PER_SECOND: "1000", RATE_LIMIT_BURST: "1000", PRESENCE_GRACE_MS: "15000" } });
});
afterAll(async () => {
  closeAll();
  await worker?.close();
});


describe.each(paths)("recovery on the %s path", (_, optionsFor) => {
  const joined = (pr: number, username: string) => documentedMember(worker.url, pr, username, optionsFor(pr));

  it("a dropped transport comes back recovered, with exactly the missed messages, in order", async () => {
    const pr = freshPr();
    const alice = await joined(pr, "alice");
    const bob = await joined(pr, "bob");
    const atAlice = collect<PrRoomMessage>(alice, "pr-room-message");
    const joinedEvents = collect(bob, "pr-room-user-joined");
    const leftEvents = collect(bob, "pr-room-user-left");
    await bob.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: "before" });
    await until(() => atAlice.length === 1, 5000, "the first message");

    alice.io.engine.close(); // the transport drops; socket.io-client reconnects by itself
    await until(() => !alice.connected, 5000, "alice to notice");
    for (let i = 1; i <= 5; i++) {
      await bob.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: `missed ${i}` });
    }
    await once(alice, "connect", 10_000);
    expect(alice.recovered).toBe(true);
    await bob.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: "after" });
    await until(() => atAlice.length === 7, 5000, "missed and newer messages");
    expect(atAlice.map((m) => m.message)).toEqual(["before", "missed 1", "missed 2", "missed 3", "missed 4", "missed 5", "after"]);
    expect(atAlice.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // Nobody noticed alice was gone.
    expect(leftEvents).toEqual([]);
    expect(joinedEvents).toEqual([]);
  });

  it("a forged pid gets a fresh connection, and the documented re-join works", async () => {
    const pr = freshPr();
    const alice = await joined(pr, "alice");
    const atAlice = collect<PrRoomMessage>(alice, "pr-room-message");
    (alice as unknown as { _pid: string })._pid = "A".repeat(40);
    alice.io.engine.close();
    await once(alice, "connect", 10_000);
    expect(alice.recovered).toBe(false);
    const bob = await joined(pr, "bob");
    await bob.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: "hello again" });
    await until(() => atAlice.length === 1, 5000, "alice back in the room by her connect handler");
  });
});

describe("recovery of a gateway connection in several rooms, with the real client", () => {
  it("recovers every room it was in, each with exactly what it missed", async () => {
    const [p1, p2] = [freshPr(), freshPr()];
    const alice = await connected(worker.url);
    for (const pr of [p1, p2]) await alice.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: pr, username: "alice" });
    const bobs = await Promise.all([p1, p2].map(async (pr) => {
      const bob = await connected(worker.url);
      await bob.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: pr, username: "bob" });
      return bob;
    }));
    const say = (index: number, message: string) =>
      bobs[index]!.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: [p1, p2][index], username: "bob", message });
    const atAlice = collect<PrRoomMessage>(alice, "pr-room-message");
    await say(0, "p1 before");
    await say(1, "p2 before");
    await until(() => atAlice.length === 2, 5000, "both rooms' first messages");
    alice.io.engine.close();
    await until(() => !alice.connected, 5000, "alice to notice");
    await say(1, "p2 missed");
    await say(0, "p1 missed");
    await once(alice, "connect", 10_000);
    expect(alice.recovered).toBe(true);
    await until(() => atAlice.length === 4, 5000, "the missed messages");
    const byRoom = (pr: number) => atAlice.filter((m) => m.pullRequestId === pr).map((m) => m.message);
    expect(byRoom(p1)).toEqual(["p1 before", "p1 missed"]);
    expect(byRoom(p2)).toEqual(["p2 before", "p2 missed"]);
  });
});

describe("idempotent sends with socket.io-client's retries", () => {
  it("a send whose ack was lost is resent and delivered once, with the first answer", async () => {
    const pr = freshPr();
    const bob = await connected(worker.url);
    await bob.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: pr, username: "bob" });
    const atBob = collect<PrRoomMessage>(bob, "pr-room-message");
    const alice = await connected(worker.url, { retries: 5, ackTimeout: 1000 });
    alice.on("connect", () => alice.emit("join-pr-room", { pullRequestId: pr, username: "alice" }));
    await alice.emitWithAck("join-pr-room", { pullRequestId: pr, username: "alice" });
    const answer = alice.emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "once", clientMessageId: "m-1" });
    alice.io.engine.close(); // the ack (if the send got through) is lost with the transport
    const ack = await answer;
    expect(ack).toMatchObject({ ok: true, id: expect.any(String), seq: expect.any(Number) });
    await alice.emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "marker", clientMessageId: "m-2" });
    await until(() => atBob.some((m) => m.message === "marker"), 5000, "the marker");
    expect(atBob.map((m) => m.message)).toEqual(["once", "marker"]);
    expect(atBob[0]!.id).toBe(ack.id);
  });
});

describe("recovery across a full server restart", () => {
  it("comes back recovered after `wrangler dev` is stopped and started again on the same state", async () => {
    const server = await restartableWorker({ PRESENCE_GRACE_MS: "20000" });
    try {
      const pr = freshPr();
      const join = async (username: string) => {
        const socket = await connected(server.url, { reconnectionDelay: 200, reconnectionDelayMax: 500 });
        socket.on("connect", () => socket.emit("join-pr-room", { pullRequestId: pr, username }));
        await socket.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: pr, username });
        return socket;
      };
      const alice = await join("alice");
      const bob = await join("bob");
      const atAlice = collect<PrRoomMessage>(alice, "pr-room-message");
      await bob.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: "before" });
      await until(() => atAlice.length === 1, 5000, "the first message");

      await server.stop();
      await until(() => !alice.connected && !bob.connected, 10_000, "both clients to notice");
      // alice stays away until bob has spoken (the client keeps its pid and offset for later).
      alice.disconnect();
      const bobBack = once(bob, "connect", 30_000); // bob may be back before start() returns
      await server.start();
      await bobBack;
      expect(bob.recovered).toBe(true);
      await bob.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "bob", message: "while alice was away" });
      const aliceBack = once(alice, "connect", 20_000);
      alice.connect();
      await aliceBack;
      expect(alice.recovered).toBe(true);
      await until(() => atAlice.length === 2, 5000, "the missed message");
      expect(atAlice.map((m) => m.message)).toEqual(["before", "while alice was away"]);
      alice.close();
      bob.close();
    } finally {
      await server.dispose();
    }
  }, 120_000);
});

describe("a pid and a token", () => {
  it("with identity on, only a connection whose token has the same subject recovers the pid", async () => {
    const server = await restartableWorker({ AUTH_SECRET: SECRET });
    try {
      for (const [, optionsFor] of paths) {
        const pr = freshPr();
        const token = (sub: string) => signToken(SECRET, { sub });
        const alice = await connected(server.url, { ...optionsFor(pr), auth: { token: await token("alice") } });
        await alice.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: pr, username: "alice" });
        const pid = (alice as unknown as { _pid: string })._pid;
        alice.close();
        // mallory got hold of alice's pid: her own valid token does not make it hers.
        const mallory = client(server.url, { ...optionsFor(pr), auth: { token: await token("mallory"), pid, offset: `${pr}:0` } });
        await once(mallory, "connect", 10_000);
        expect(mallory.recovered).toBe(false);
        const refused = await mallory.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "mallory", message: "x" });
        expect(refused.error.code).toBe("not_joined");
        mallory.close();
      }
    } finally {
      await server.dispose();
    }
  }, 60_000);
});
