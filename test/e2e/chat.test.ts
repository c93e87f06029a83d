/**
 * The API document's client code, unchanged but for the URL (and, on the direct path, the
 * pull request in the query), against the Worker served by wrangler: the product, end to
 * end, on both paths. Every test has rooms of its own and waits for conditions, never for
 * fixed times; "nothing else arrived" is checked behind a marker message (support/client.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PrRoomMessage } from "../../src/chat/events.js";
import {
  ack,
  client,
  closeAll,
  collect,
  connected,
  marker,
  once,
  record,
  send,
  until,
  upTo,
  type Seen,
  type Socket,
} from "../support/client.js";
import { paths, type ClientOptions } from "../support/paths.js";
import { serveWorker, type ServedWorker } from "../support/worker.js";
import { never } from "../shared/until.js";

/** src/chat/chat.ts MAX_HELD_EVENTS: events one connection may have waiting for their join. */
const MAX_HELD_EVENTS = 64;
const PRESENCE_GRACE_MS = 300;

let worker: ServedWorker;
let nextPr = 1;
const freshPr = () => 5000 + nextPr++;

beforeAll(async () => {
  worker = await serveWorker({
    // The 500-message burst below is far past the default rate limit (10/s, bursts of 20), on purpose.
    vars: {
      TYPING_TIMEOUT_MS: "1000",
      RATE_LIMIT_PER_SECOND: "1000",
      RATE_LIMIT_BURST: "1000",
      PRESENCE_GRACE_MS: String(PRESENCE_GRACE_MS),
    },
  });
});
afterAll(async () => {
  closeAll();
  await worker?.close();
});

const names = (log: Seen[], event: string) => log.filter(([name]) => name === event).map(([, payload]) => payload.username);

describe.each(paths)("on the %s path", (path, optionsFor) => {
  async function joined(pullRequestId: number, username: string, options: ClientOptions = {}): Promise<Socket> {
    const socket = await connected(worker.url, { ...optionsFor(pullRequestId), ...options });
    expect(await ack(socket, "join-pr-room", { pullRequestId, username })).toMatchObject({ ok: true });
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
      const socket = client(worker.url, optionsFor(pullRequestId));
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

      await until(() => lines.length >= 3, 10_000, "the example's output").catch((e) => {
        throw new Error(`${e.message}: ${JSON.stringify(lines)}`);
      });
      expect(lines).toEqual([
        "Connected to WebSocket server",
        "johndoe: This looks great! Approved.",
        "johndoe: This looks great! Approved.",
      ]);
      await until(() => seen.length === 1, 5000, "the observer's copy");
      expect(seen[0]).toMatchObject({ pullRequestId, username: "johndoe", message: "This looks great! Approved.", seq: 1 });
    });

    it("React example: join on connect, leave and close on unmount", async () => {
      const pullRequestId = freshPr();
      const username = "janedoe";
      const other = await joined(pullRequestId, "bob");

      // useEffect body from the document, with setMessages collecting.
      const messages: Array<{ username: string; message: string }> = [];
      const newSocket = client(worker.url, optionsFor(pullRequestId));
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
      expect(await ack(other, "join-pr-room", { pullRequestId, username: "bob" })).toMatchObject({ members: 1, users: ["bob"] });
      expect((await send(other, pullRequestId, "bob", "gone?")).ok).toBe(true);
      expect(messages).toHaveLength(1);
    });
  });

  describe("rooms", () => {
    it("keeps two rooms apart", async () => {
      const [p1, p2] = [freshPr(), freshPr()];
      const a = await joined(p1, "alice");
      const b = await joined(p2, "bob");
      const atA = record(a);
      const atB = record(b);
      expect((await send(a, p1, "alice", "p1 only")).ok).toBe(true);
      expect((await send(b, p2, "bob", "p2 only")).ok).toBe(true);
      // Each room's marker is sent after the other room's message was broadcast (acked).
      const m1 = await marker(a, p1, "alice", [atA]);
      const m2 = await marker(b, p2, "bob", [atB]);
      expect(upTo(atA, m1).map(([event, m]) => [event, m.message])).toEqual([["pr-room-message", "p1 only"], ["pr-room-message", m1]]);
      expect(upTo(atB, m2).map(([event, m]) => [event, m.message])).toEqual([["pr-room-message", "p2 only"], ["pr-room-message", m2]]);
    });

    it("refuses a non-member's send, by ack and by pr-room-error", async () => {
      const pr = freshPr();
      const member = await joined(pr, "alice");
      const atMember = record(member);
      // On the direct path the outsider's socket is in the room's own object, not joined.
      const outsider = await connected(worker.url, optionsFor(pr));
      const error = once(outsider, "pr-room-error");
      outsider.emit("send-message-to-pr-room", { pullRequestId: pr, username: "eve", message: "hi" });
      // Both wait out JOIN_GRACE_MS for a join that never comes, side by side.
      const refused = await send(outsider, pr, "eve", "hi");
      expect(refused).toEqual({ ok: false, error: { code: "not_joined", message: expect.stringContaining(`pr:${pr}`) } });
      expect((await error)[0]).toMatchObject({ event: "send-message-to-pr-room", pullRequestId: pr, code: "not_joined" });
      const text = await marker(member, pr, "alice", [atMember]);
      expect(upTo(atMember, text).map(([event]) => event)).toEqual(["pr-room-message"]);
      expect(outsider.connected).toBe(true);
    });

    it("relays typing and stop-typing to the others, and expires a silent typist", async () => {
      const pr = freshPr();
      const a = await joined(pr, "alice");
      const atA = record(a);
      const b = await joined(pr, "bob");
      const typing = once(b, "typing");
      a.emit("typing", { pullRequestId: pr, username: "alice" });
      expect((await typing)[0]).toEqual({ pullRequestId: pr, username: "alice" });
      const stopped = once(b, "stop-typing");
      a.emit("stop-typing", { pullRequestId: pr, username: "alice" });
      expect((await stopped)[0]).toEqual({ pullRequestId: pr, username: "alice" });

      // Not renewed within TYPING_TIMEOUT_MS (1 s here): the room stops it itself.
      const started = Date.now();
      const expired = once(b, "stop-typing", 5000);
      a.emit("typing", { pullRequestId: pr, username: "alice" });
      expect((await expired)[0]).toEqual({ pullRequestId: pr, username: "alice" });
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);

      // The typist itself heard none of it.
      const text = await marker(b, pr, "bob", [atA]);
      expect(upTo(atA, text).map(([event]) => event)).toEqual(["pr-room-user-joined", "pr-room-message"]);
    });

    it("leave: the leaver gets nothing more", async () => {
      const pr = freshPr();
      const a = await joined(pr, "alice");
      const b = await joined(pr, "bob");
      const atB = record(b);
      expect(await ack(b, "leave-pr-room", { pullRequestId: pr, username: "bob" })).toEqual({ ok: true, pullRequestId: pr });
      expect((await send(a, pr, "alice", "bye bob")).ok).toBe(true);
      // Back in, bob gets the room's next message; "bye bob" was broadcast before he re-joined.
      expect(await ack(b, "join-pr-room", { pullRequestId: pr, username: "bob" })).toMatchObject({ ok: true });
      const text = await marker(a, pr, "alice", [atB]);
      expect(upTo(atB, text).map(([event, payload]) => [event, payload.message])).toEqual([["pr-room-message", text]]);
    });

    it("a 500-message burst reaches 20 members complete and in order", async () => {
      const pr = freshPr();
      const members = await Promise.all(Array.from({ length: 20 }, (_, i) => joined(pr, `member-${i}`)));
      const logs = members.map((socket) => record(socket));
      const sender = members[0]!;
      const acks = Array.from({ length: 500 }, (_, i) =>
        ack(sender, "send-message-to-pr-room", { pullRequestId: pr, username: "member-0", message: `m${i}` }, 30_000),
      );
      const answers = await Promise.all(acks);
      expect(answers.every((answer) => answer.ok)).toBe(true);
      expect(answers.map((answer) => answer.seq)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
      const text = await marker(sender, pr, "member-0", logs);
      const expected = [...Array.from({ length: 500 }, (_, i) => `m${i}`), text];
      for (const log of logs) {
        const messages = upTo(log, text).filter(([event]) => event === "pr-room-message");
        expect(messages.map(([, m]) => m.message)).toEqual(expected);
        expect(messages.map(([, m]) => m.seq)).toEqual(Array.from({ length: 501 }, (_, i) => i + 1));
      }
    });

    it(`holds up to ${MAX_HELD_EVENTS} events sent before the join; the excess is refused not_joined at once, nothing lost silently`, async () => {
      const pr = freshPr();
      const observer = await joined(pr, "observer");
      const atObserver = record(observer);
      const early = await connected(worker.url, optionsFor(pr));
      const errors = collect(early, "pr-room-error");
      const answers: any[] = [];
      for (let i = 0; i < MAX_HELD_EVENTS + 2; i++) {
        void send(early, pr, "early", `h${i}`).then((answer) => (answers[i] = answer));
      }
      // Two more without an ack: refused through pr-room-error.
      early.emit("send-message-to-pr-room", { pullRequestId: pr, username: "early", message: "x1" });
      early.emit("typing", { pullRequestId: pr, username: "early" });

      // The excess is answered while the first ones still wait for their join (JOIN_GRACE_MS, 1 s).
      await until(() => answers.filter(Boolean).length === 2 && errors.length === 2, 5000, "the excess refused");
      expect(answers.slice(0, MAX_HELD_EVENTS).filter(Boolean)).toEqual([]);
      for (const answer of answers.slice(MAX_HELD_EVENTS)) expect(answer.error.code).toBe("not_joined");
      expect(errors.map((error) => [error.event, error.code])).toEqual([
        ["send-message-to-pr-room", "not_joined"],
        ["typing", "not_joined"],
      ]);

      // The join comes: every held event goes through, in order.
      expect(await ack(early, "join-pr-room", { pullRequestId: pr, username: "early" })).toMatchObject({ ok: true });
      await until(() => answers.filter(Boolean).length === MAX_HELD_EVENTS + 2, 5000, "the held events answered");
      expect(answers.slice(0, MAX_HELD_EVENTS).map((answer) => answer.ok)).toEqual(Array(MAX_HELD_EVENTS).fill(true));
      const text = await marker(observer, pr, "observer", [atObserver]);
      const messages = upTo(atObserver, text).filter(([event]) => event === "pr-room-message").map(([, m]) => m.message);
      expect(messages).toEqual([...Array.from({ length: MAX_HELD_EVENTS }, (_, i) => `h${i}`), text]);
    });

    it("an abrupt drop (no close frame): the others see stop-typing, then pr-room-user-left after the grace, and the room goes on", async () => {
      const pr = freshPr();
      const bob = await joined(pr, "bob");
      const atBob = record(bob);
      const alice = await joined(pr, "alice", { reconnection: false });
      alice.emit("typing", { pullRequestId: pr, username: "alice" });
      await until(() => names(atBob, "typing").includes("alice"), 5000, "alice typing");

      // A TCP reset (RST, not FIN): the socket goes without a WebSocket close frame, and the client does not come back.
      const dropped = Date.now();
      ((alice.io.engine.transport as any).ws._socket as import("node:net").Socket).resetAndDestroy();
      await until(() => names(atBob, "pr-room-user-left").includes("alice"), 10_000, "alice to leave");
      expect(Date.now() - dropped).toBeGreaterThanOrEqual(PRESENCE_GRACE_MS - 20);
      expect(atBob.map(([event, payload]) => [event, payload.username])).toEqual([
        ["pr-room-user-joined", "alice"],
        ["typing", "alice"],
        ["stop-typing", "alice"],
        ["pr-room-user-left", "alice"],
      ]);

      // The room is healthy: a newcomer gets in and hears bob.
      const carol = await joined(pr, "carol");
      expect(await ack(carol, "get-pr-room-users", { pullRequestId: pr })).toEqual({ ok: true, pullRequestId: pr, users: ["bob", "carol"] });
      const atCarol = record(carol);
      await marker(bob, pr, "bob", [atBob, atCarol]);
    });
  });

  describe("presence", () => {
    it("two tabs of one user are one user: the second tab's join and closing one tab announce nothing", async () => {
      const pr = freshPr();
      const bob = await joined(pr, "bob");
      const atBob = record(bob);
      const tab1 = await joined(pr, "alice");
      const tab2 = await connected(worker.url, optionsFor(pr));
      expect(await ack(tab2, "join-pr-room", { pullRequestId: pr, username: "alice" })).toEqual({
        ok: true,
        pullRequestId: pr,
        members: 2,
        users: ["alice", "bob"],
        seq: 0,
      });
      expect(await ack(bob, "get-pr-room-users", { pullRequestId: pr })).toEqual({ ok: true, pullRequestId: pr, users: ["alice", "bob"] });
      const text = await marker(tab1, pr, "alice", [atBob]);
      expect(upTo(atBob, text).map(([event, payload]) => [event, payload.username])).toEqual([
        ["pr-room-user-joined", "alice"],
        ["pr-room-message", "alice"],
      ]);

      tab2.close();
      // No message can be ordered after tab 2's departure (the room hears of it on tab 2's own
      // socket or link), so this waits out the grace, and a margin, for a user-left that must not come.
      await never(() => names(atBob, "pr-room-user-left").length > 0, PRESENCE_GRACE_MS + 700, "a user-left for alice's second tab");
      expect(await ack(bob, "get-pr-room-users", { pullRequestId: pr })).toMatchObject({ users: ["alice", "bob"] });

      // The last tab closing is announced: the check above could have failed.
      tab1.close();
      await until(() => names(atBob, "pr-room-user-left").includes("alice"), 5000, "alice to leave with her last tab");
    });

    it("two tabs typing: never relayed to the other tab, and stop-typing only when neither tab types", async () => {
      const pr = freshPr();
      const bob = await joined(pr, "bob");
      const atBob = record(bob);
      const tabA = await joined(pr, "alice");
      const tabB = await joined(pr, "alice");
      const atB = record(tabB);
      const typing = (tab: Socket, event: "typing" | "stop-typing") => ack(tab, event, { pullRequestId: pr, username: "alice" });

      expect(await typing(tabA, "typing")).toEqual({ ok: true });
      expect(await typing(tabB, "typing")).toEqual({ ok: true });
      expect(await typing(tabA, "stop-typing")).toEqual({ ok: true });
      // The room answered each before bob's marker: anything it sent for them is ahead of it.
      const text = await marker(bob, pr, "bob", [atBob, atB]);
      expect(upTo(atBob, text).map(([event, payload]) => [event, payload.username])).toEqual([
        ["pr-room-user-joined", "alice"],
        ["typing", "alice"],
        ["typing", "alice"],
        ["pr-room-message", "bob"],
      ]);
      expect(upTo(atB, text).map(([event]) => event)).toEqual(["pr-room-message"]);

      expect(await typing(tabB, "stop-typing")).toEqual({ ok: true });
      await until(() => names(atBob, "stop-typing").length === 1, 5000, "stop-typing once both tabs stopped");
      expect(names(atBob, "stop-typing")).toEqual(["alice"]);
    });

    it("NFC and NFD spellings of a name are one user", async () => {
      const pr = freshPr();
      const composed = "Jos\u00e9";
      const decomposed = "Jose\u0301";
      const bob = await joined(pr, "bob");
      const atBob = record(bob);
      const tab1 = await joined(pr, composed);
      const tab2 = await connected(worker.url, optionsFor(pr));
      expect(await ack(tab2, "join-pr-room", { pullRequestId: pr, username: decomposed })).toMatchObject({
        ok: true,
        members: 2,
        users: [composed, "bob"],
      });
      // Once joined, either spelling speaks for the connection.
      expect((await send(tab2, pr, decomposed, "one")).ok).toBe(true);
      expect((await send(tab2, pr, composed, "two")).ok).toBe(true);
      const text = await marker(tab1, pr, decomposed, [atBob]);
      expect(upTo(atBob, text).map(([event, payload]) => [event, payload.username])).toEqual([
        ["pr-room-user-joined", composed],
        ["pr-room-message", composed],
        ["pr-room-message", composed],
        ["pr-room-message", composed],
      ]);
    });

    it("look-alike names (zero-width, bidi, line separator) are refused invalid_payload", async () => {
      const pr = freshPr();
      const bob = await joined(pr, "bob");
      const atBob = record(bob);
      const socket = await connected(worker.url, optionsFor(pr));
      const errors = collect(socket, "pr-room-error");
      const lookAlikes = ["admin\u200B", "\u202Eadmin", "a\u2028b", "ad\u2029min", "\u2066admin", "admin\u00AD"];
      for (const username of lookAlikes) {
        const answer = await ack(socket, "join-pr-room", { pullRequestId: pr, username });
        expect(answer, JSON.stringify(username)).toEqual({ ok: false, error: { code: "invalid_payload", message: expect.stringContaining("username") } });
        socket.emit("join-pr-room", { pullRequestId: pr, username });
      }
      await until(() => errors.length === lookAlikes.length, 5000, "a pr-room-error for each");
      for (const error of errors) expect(error).toMatchObject({ event: "join-pr-room", code: "invalid_payload" });

      // The plain name gets in, and a look-alike of it still cannot speak for it.
      expect(await ack(socket, "join-pr-room", { pullRequestId: pr, username: "admin" })).toMatchObject({ ok: true, users: ["admin", "bob"] });
      expect((await send(socket, pr, "admin\u200B", "hi")).error.code).toBe("invalid_payload");
      const text = await marker(socket, pr, "admin", [atBob]);
      expect(upTo(atBob, text).map(([event, payload]) => [event, payload.username])).toEqual([
        ["pr-room-user-joined", "admin"],
        ["pr-room-message", "admin"],
      ]);
    });
  });

  if (path === "gateway") {
    it("several rooms on one connection, each message saying its room", async () => {
      const [p1, p2] = [freshPr(), freshPr()];
      const socket = await joined(p1, "alice");
      expect(await ack(socket, "join-pr-room", { pullRequestId: p2, username: "alice" })).toMatchObject({ ok: true });
      const seen = collect<PrRoomMessage>(socket, "pr-room-message");
      expect((await send(socket, p2, "alice", "in p2")).ok).toBe(true);
      expect((await send(socket, p1, "alice", "in p1")).ok).toBe(true);
      await until(() => seen.length === 2, 5000, "both messages");
      expect(seen.map((m) => [m.pullRequestId, m.message])).toEqual([
        [p2, "in p2"],
        [p1, "in p1"],
      ]);
    });
  } else {
    it("one room per connection: joining another pull request is refused room_mismatch, and its own room still works", async () => {
      const [mine, other] = [freshPr(), freshPr()];
      const bystander = await joined(other, "carol");
      const atBystander = record(bystander);
      const socket = await connected(worker.url, optionsFor(mine));
      const refused = await ack(socket, "join-pr-room", { pullRequestId: other, username: "alice" });
      expect(refused).toEqual({ ok: false, error: { code: "room_mismatch", message: expect.stringContaining(`pr:${other}`) } });
      const error = once(socket, "pr-room-error");
      socket.emit("join-pr-room", { pullRequestId: other, username: "alice" });
      expect((await error)[0]).toMatchObject({ event: "join-pr-room", pullRequestId: other, code: "room_mismatch" });

      // Its own room: in, and speaking.
      expect(await ack(socket, "join-pr-room", { pullRequestId: mine, username: "alice" })).toEqual({
        ok: true,
        pullRequestId: mine,
        members: 1,
        users: ["alice"],
        seq: 0,
      });
      const atSocket = record(socket);
      await marker(socket, mine, "alice", [atSocket]);
      // Also after joining, the other room stays refused; nobody there heard of alice.
      expect((await ack(socket, "join-pr-room", { pullRequestId: other, username: "alice" })).error.code).toBe("room_mismatch");
      const text = await marker(bystander, other, "carol", [atBystander]);
      expect(upTo(atBystander, text).map(([event]) => event)).toEqual(["pr-room-message"]);
    });
  }
});
