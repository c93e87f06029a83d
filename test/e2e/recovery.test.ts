/**
 * Connection state recovery end to end: the real socket.io-client 4.8, unchanged,
 * against the Worker under `wrangler dev`, on both paths (gateway and direct).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PrRoomMessage } from "../../src/events.js";
import { closeAll, collect, connected, once, until, type Socket } from "../support/client.js";
import { serveWorker, type ServedWorker } from "../support/worker.js";

let worker: ServedWorker;
// Rooms from a random base: wrangler may keep room state between runs.
let nextPr = 1_000_000 + Math.floor(Math.random() * 1_000_000) * 100;
const freshPr = () => nextPr++;

beforeAll(async () => {
  worker = await serveWorker({ vars: { RATE_LIMIT_PER_SECOND: "1000", RATE_LIMIT_BURST: "1000", PRESENCE_GRACE_MS: "2000" } });
});
afterAll(async () => {
  closeAll();
  await worker?.close();
});

const paths = [
  ["gateway", (_pr: number) => ({})],
  ["direct", (pr: number) => ({ query: { pullRequestId: String(pr) } })],
] as const;

describe.each(paths)("recovery on the %s path", (_, optionsFor) => {
  async function joined(pr: number, username: string): Promise<Socket> {
    const socket = await connected(worker.url, optionsFor(pr));
    // The documented client: join on every connect.
    socket.on("connect", () => socket.emit("join-pr-room", { pullRequestId: pr, username }));
    expect(await socket.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: pr, username })).toMatchObject({ ok: true });
    return socket;
  }

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
