/**
 * The API document's client code, unchanged but for the URL, against the Worker
 * served by wrangler: the product, end to end.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PrRoomMessage } from "../../src/events.js";
import { closeAll, collect, connected, client, once, sleep, until, type Socket } from "../support/client.js";
import { serveWorker, type ServedWorker } from "../support/worker.js";

let worker: ServedWorker;
let nextPr = 1;
const freshPr = () => 5000 + nextPr++;

beforeAll(async () => {
  worker = await serveWorker({
    // The 500-message burst below is far past the default rate limit (10/s, bursts of 20), on purpose.
    vars: { TYPING_TIMEOUT_MS: "1000", RATE_LIMIT_PER_SECOND: "1000", RATE_LIMIT_BURST: "1000", PRESENCE_GRACE_MS: "300" },
  });
});
afterAll(async () => {
  closeAll();
  await worker?.close();
});

async function joined(pullRequestId: number, username: string): Promise<Socket> {
  const socket = await connected(worker.url);
  const ack = await socket.timeout(5000).emitWithAck("join-pr-room", { pullRequestId, username });
  expect(ack).toMatchObject({ ok: true });
  return socket;
}

describe("the API document's examples", () => {
  it("Complete Example, as written", async () => {
    const pullRequestId = freshPr();
    const observer = await joined(pullRequestId, "reviewer");
    const seen = collect<PrRoomMessage>(observer, "pr-room-message");

    // --- the document's Complete Example (io URL aside; console and UI collected) ---
    const lines: string[] = [];
    const displayMessage = (username: string, message: string) => lines.push(`${username}: ${message}`);
    const console = { log: (line: string) => lines.push(line) };
    const socket = client(worker.url);
    const username = "johndoe";
    socket.on("connect", () => {
      console.log("Connected to WebSocket server");
      socket.emit("join-pr-room", { pullRequestId, username });
    });
    socket.on("pr-room-message", (data: { username: string; message: string }) => {
      console.log(`${data.username}: ${data.message}`);
      displayMessage(data.username, data.message);
    });
    function sendMessage(text: string) {
      socket.emit("send-message-to-pr-room", { pullRequestId, username, message: text });
    }
    sendMessage("This looks great! Approved.");
    // --- end of the example ---

    await until(() => lines.length >= 3, 10_000, "the example's output").catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(lines)}`); });
    expect(lines).toEqual([
      "Connected to WebSocket server",
      "johndoe: This looks great! Approved.",
      "johndoe: This looks great! Approved.",
    ]);
    await until(() => seen.length === 1, 5000, "the observer's copy");
    expect(seen[0]).toMatchObject({ pullRequestId, username: "johndoe", message: "This looks great! Approved." });
  });

  it("React example: join on connect, leave and close on unmount", async () => {
    const pullRequestId = freshPr();
    const username = "janedoe";
    const other = await joined(pullRequestId, "bob");

    // useEffect body from the document, with setMessages collecting.
    const messages: Array<{ username: string; message: string }> = [];
    const newSocket = client(worker.url);
    newSocket.on("connect", () => newSocket.emit("join-pr-room", { pullRequestId, username }));
    newSocket.on("pr-room-message", (data) => messages.push(data));
    const cleanup = () => {
      newSocket.emit("leave-pr-room", { pullRequestId, username });
      newSocket.close();
    };
    await once(newSocket, "connect");
    // sendMessage from the component.
    const inputMessage = "Looks good to me";
    if (newSocket && inputMessage.trim()) {
      newSocket.emit("send-message-to-pr-room", { pullRequestId, username, message: inputMessage });
    }
    await until(() => messages.length === 1, 5000, "own message");
    expect(messages[0]).toMatchObject({ username, message: inputMessage });

    const left = once(other, "pr-room-user-left");
    cleanup();
    expect((await left)[0]).toEqual({ pullRequestId, username });
    expect(await other.timeout(5000).emitWithAck("join-pr-room", { pullRequestId, username: "bob" })).toMatchObject({
      members: 1,
      users: ["bob"],
    });
    await other.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId, username: "bob", message: "gone?" });
    expect(messages).toHaveLength(1);
  });
});

describe("rooms", () => {
  it("keeps two rooms apart", async () => {
    const [p1, p2] = [freshPr(), freshPr()];
    const a = await joined(p1, "alice");
    const b = await joined(p2, "bob");
    const atA = collect<PrRoomMessage>(a, "pr-room-message");
    const atB = collect<PrRoomMessage>(b, "pr-room-message");
    await a.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: p1, username: "alice", message: "p1 only" });
    await b.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: p2, username: "bob", message: "p2 only" });
    await sleep(200);
    expect(atA.map((m) => m.message)).toEqual(["p1 only"]);
    expect(atB.map((m) => m.message)).toEqual(["p2 only"]);
  });

  it("refuses a non-member's send, by ack and by pr-room-error", async () => {
    const pr = freshPr();
    const member = await joined(pr, "alice");
    const seen = collect<PrRoomMessage>(member, "pr-room-message");
    const outsider = await connected(worker.url);
    const ack = await outsider.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "eve", message: "hi" });
    expect(ack).toEqual({ ok: false, error: { code: "not_joined", message: expect.stringContaining(`pr:${pr}`) } });
    const error = once(outsider, "pr-room-error");
    outsider.emit("send-message-to-pr-room", { pullRequestId: pr, username: "eve", message: "hi" });
    expect((await error)[0]).toMatchObject({ event: "send-message-to-pr-room", pullRequestId: pr, code: "not_joined" });
    await sleep(200);
    expect(seen).toEqual([]);
    expect(outsider.connected).toBe(true);
  });

  it("relays typing and stop-typing to the others, and expires a silent typist", async () => {
    const pr = freshPr();
    const a = await joined(pr, "alice");
    const b = await joined(pr, "bob");
    const typingAtA = collect(a, "typing");
    const typing = once(b, "typing");
    a.emit("typing", { pullRequestId: pr, username: "alice" });
    expect((await typing)[0]).toEqual({ pullRequestId: pr, username: "alice" });
    const stopped = once(b, "stop-typing");
    a.emit("stop-typing", { pullRequestId: pr, username: "alice" });
    expect((await stopped)[0]).toEqual({ pullRequestId: pr, username: "alice" });
    expect(typingAtA).toEqual([]);

    // Not renewed within TYPING_TIMEOUT_MS (1 s here): the room stops it itself.
    const started = Date.now();
    const expired = once(b, "stop-typing", 5000);
    a.emit("typing", { pullRequestId: pr, username: "alice" });
    expect((await expired)[0]).toEqual({ pullRequestId: pr, username: "alice" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it("leave: the leaver gets nothing more", async () => {
    const pr = freshPr();
    const a = await joined(pr, "alice");
    const b = await joined(pr, "bob");
    const atB = collect<PrRoomMessage>(b, "pr-room-message");
    expect(await b.timeout(5000).emitWithAck("leave-pr-room", { pullRequestId: pr, username: "bob" })).toEqual({
      ok: true,
      pullRequestId: pr,
    });
    await a.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "bye bob" });
    await sleep(200);
    expect(atB).toEqual([]);
  });

  it("several rooms on one connection, each message saying its room", async () => {
    const [p1, p2] = [freshPr(), freshPr()];
    const socket = await joined(p1, "alice");
    await socket.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: p2, username: "alice" });
    const seen = collect<PrRoomMessage>(socket, "pr-room-message");
    await socket.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: p2, username: "alice", message: "in p2" });
    await socket.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: p1, username: "alice", message: "in p1" });
    await until(() => seen.length === 2, 5000, "both messages");
    expect(seen.map((m) => [m.pullRequestId, m.message])).toEqual([
      [p2, "in p2"],
      [p1, "in p1"],
    ]);
  });

  it("a 500-message burst reaches 20 members complete and in order", async () => {
    const pr = freshPr();
    const members = await Promise.all(Array.from({ length: 20 }, (_, i) => joined(pr, `member-${i}`)));
    const inboxes = members.map((socket) => collect<PrRoomMessage>(socket, "pr-room-message"));
    const sender = members[0]!;
    const acks = Array.from({ length: 500 }, (_, i) =>
      sender.timeout(30_000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "member-0", message: `m${i}` }),
    );
    expect((await Promise.all(acks)).every((ack) => ack.ok)).toBe(true);
    await until(() => inboxes.every((inbox) => inbox.length >= 500), 30_000, "every delivery");
    await sleep(200);
    const expected = Array.from({ length: 500 }, (_, i) => `m${i}`);
    for (const inbox of inboxes) expect(inbox.map((m) => m.message)).toEqual(expected);
  });
});
