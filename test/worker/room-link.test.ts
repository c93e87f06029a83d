/**
 * RoomLink's fault handling with real WebSockets: the room's side is a WebSocketPair
 * end the test holds, so it can drop the link; failures are injected through the
 * opener, the same seam the gateway uses to reach a PrRoom.
 */
import { describe, expect, it } from "vitest";
import { FinalLinkError, type LinkOpener, type LinkTiming } from "../../src/gateway/link-socket.js";
import { MAX_QUEUED_COMMANDS, RoomLink } from "../../src/gateway/room-link.js";
import { ChatSession, timerScheduler } from "../../src/chat/chat.js";
import { parseConfig } from "../../src/chat/config.js";
import { SocketPacketType, type SocketPacket } from "../../src/protocol/socketio.js";
import { Socket } from "../../src/session/socket.js";
import type { ErrorBody } from "../../src/chat/events.js";
import { never, until } from "../shared/until.js";

/** Fast retries so that giving up takes milliseconds. */
const FAST: Partial<LinkTiming> = { attempts: 4, backoffBaseMs: 5, backoffCapMs: 20, commandTimeoutMs: 200 };

function roomSide() {
  const { 0: gateway, 1: room } = new WebSocketPair();
  room.accept();
  const received: string[] = [];
  let closed: number | undefined;
  room.addEventListener("message", (event) => {
    received.push(event.data as string);
  });
  room.addEventListener("close", (event) => {
    closed = event.code;
  });
  return { gateway, room, received, closedWith: () => closed };
}

function recorder() {
  const seen = {
    frames: [] as string[],
    unanswered: [] as Array<[number[], ErrorBody]>,
    lost: [] as Array<[ErrorBody, boolean]>,
    left: 0,
  };
  return {
    seen,
    events: {
      frame: (frame: string) => void seen.frames.push(frame),
      unanswered: (ids: number[], error: ErrorBody) => void seen.unanswered.push([ids, error]),
      failed: (error: ErrorBody, everOpened: boolean) => void seen.lost.push([error, everOpened]),
      left: () => void seen.left++,
    },
  };
}

const message = (id: string, seq: number) =>
  `42["pr-room-message",{"pullRequestId":1,"username":"bob","message":"m","id":"${id}","seq":${seq},"sentAt":1},"1:${seq}"]`;

describe("RoomLink", () => {
  it("queues commands until open, then sends them in order and forwards frames untouched", async () => {
    const side = roomSide();
    const { seen, events } = recorder();
    const link = new RoomLink("alice", async () => ({ ws: side.gateway }), events, false, FAST);
    link.send({ t: "join", ack: 1 });
    link.send({ t: "msg", ack: 2, message: "hi" });
    expect(await link.open()).toBe(true);
    await until(() => side.received.length === 2, 1000, "both commands");
    expect(side.received.map((text) => JSON.parse(text).t)).toEqual(["join", "msg"]);
    side.room.send('431[{"ok":true}]');
    await until(() => seen.frames.length === 1, 1000, "the ack");
    expect(seen.frames).toEqual(['431[{"ok":true}]']);
    link.leave();
  });

  it("re-opens by itself when the room drops the link, resuming after the last message it forwarded", async () => {
    const first = roomSide();
    const second = roomSide();
    const sides = [first, second];
    const resumes: Array<string | undefined> = [];
    const { seen, events } = recorder();
    const link = new RoomLink("alice", async (resume) => (resumes.push(resume), ({ ws: sides.shift()!.gateway })), events, true, FAST);
    await link.open();
    first.room.send(message("a", 41));
    first.room.send(message("b", 42));
    await until(() => seen.frames.length === 2, 1000, "two messages");
    expect(link.position).toBe(42);
    link.send({ t: "msg", ack: 7, message: "lost in the restart?" });
    await until(() => first.received.length === 1, 1000, "the command");
    first.room.close(1001, "evicted");
    await until(() => resumes.length === 2, 1000, "a re-open");
    expect(resumes).toEqual([undefined, "42"]);
    expect(seen.unanswered).toEqual([[[7], expect.objectContaining({ code: "room_unavailable" })]]);
    expect(link.send({ t: "msg", ack: 8, message: "after" })).toBe(true);
    await until(() => second.received.length === 1, 1000, "the command on the new link");
    expect(JSON.parse(second.received[0]!).ack).toBe(8);
    expect(seen.lost).toEqual([]);
    link.leave();
  });

  it("gives up after its attempts and says so: room_unavailable, never silence", async () => {
    const first = roomSide();
    let attempts = 0;
    // The retries fail only once the command below is queued, so the test does not race them.
    let queued!: () => void;
    const commandQueued = new Promise<void>((resolve) => (queued = resolve));
    const opener: LinkOpener = async () => {
      attempts++;
      if (attempts === 1) return { ws: first.gateway };
      await commandQueued;
      throw new Error("room unreachable");
    };
    const { seen, events } = recorder();
    const link = new RoomLink("alice", opener, events, false, FAST);
    await link.open();
    first.room.close(1001, "evicted");
    await until(() => attempts >= 2, 5000, "a retry");
    expect(link.send({ t: "msg", ack: 9, message: "queued while reopening" })).toBe(true);
    queued();
    await until(() => seen.lost.length === 1, 5000, "giving up");
    expect(attempts).toBe(1 + FAST.attempts!);
    expect(seen.unanswered).toEqual([[[9], expect.objectContaining({ code: "room_unavailable" })]]);
    expect(seen.lost).toEqual([[expect.objectContaining({ code: "room_unavailable" }), true]]);
    expect(link.closed).toBe(true);
    expect(link.send({ t: "typing" })).toBe(false);
  });

  it("retries with full jitter: random delays under a doubling cap, not in step", async () => {
    const starts: number[] = [];
    const opener: LinkOpener = async () => {
      starts.push(Date.now());
      throw new Error("unreachable");
    };
    const timing = { attempts: 4, backoffBaseMs: 40, backoffCapMs: 1000, commandTimeoutMs: 1000 };
    const links = Array.from({ length: 8 }, () => new RoomLink("alice", opener, recorder().events, false, timing));
    await Promise.all(links.map((link) => link.open()));
    expect(starts.length).toBe(8 * 4);
    // 8 links started together; with jitter their retries spread out instead of landing together.
    const secondTries = starts.slice(8, 16).sort((a, b) => a - b);
    expect(new Set(secondTries).size).toBeGreaterThan(1);
  });

  it("does not retry what retrying cannot fix", async () => {
    let attempts = 0;
    const { seen, events } = recorder();
    const link = new RoomLink("alice", async () => {
      attempts++;
      throw new FinalLinkError("room did not take the link: 400 bad link identity");
    }, events, false, FAST);
    expect(await link.open()).toBe(false);
    expect(attempts).toBe(1);
    expect(seen.lost).toEqual([[expect.objectContaining({ code: "room_unavailable" }), false]]);
  });

  it("answers a command the room never answers with room_unavailable, and replaces the hung link", async () => {
    const hung = roomSide();
    const fresh = roomSide();
    const sides = [hung, fresh];
    const { seen, events } = recorder();
    const link = new RoomLink("alice", async () => ({ ws: sides.shift()!.gateway }), events, false, FAST);
    await link.open();
    link.send({ t: "msg", ack: 5, message: "into the void" });
    await until(() => seen.unanswered.length === 1, 2000, "the timeout");
    expect(seen.unanswered[0]).toEqual([[5], expect.objectContaining({ code: "room_unavailable" })]);
    await until(() => sides.length === 0, 1000, "a new link");
    expect(link.send({ t: "typing", ack: 6 })).toBe(true);
    await until(() => fresh.received.length === 1, 1000, "the command on the new link");
    link.leave();
  });

  it("closes a link the room accepted after the client had already left", async () => {
    const side = roomSide();
    let accept!: () => void;
    const accepted = new Promise<void>((resolve) => (accept = resolve));
    const { seen, events } = recorder();
    const link = new RoomLink("alice", async () => (await accepted, { ws: side.gateway }), events, false, FAST);
    link.send({ t: "join", ack: 4 });
    const opening = link.open();
    link.leave(); // leave while the room is still accepting
    accept();
    expect(await opening).toBe(false);
    await until(() => side.closedWith() !== undefined, 1000, "the room's end to close");
    expect(seen.unanswered).toEqual([[[4], expect.objectContaining({ code: "not_joined" })]]);
    expect(seen.lost).toEqual([]);
  });

  it("does not re-open after a leave during its backoff", { timeout: 15_000 }, async () => {
    const first = roomSide();
    let attempts = 0;
    const { events } = recorder();
    const opener: LinkOpener = async () => {
      attempts++;
      if (attempts === 1) return { ws: first.gateway };
      if (attempts === 2) throw new Error("unreachable for a moment"); // the next try waits its backoff
      return { ws: roomSide().gateway };
    };
    const link = new RoomLink("alice", opener, events, false, { ...FAST, backoffBaseMs: 100, backoffCapMs: 100 });
    await link.open();
    first.room.close(1001, "evicted");
    // The close reaches the gateway side as an event: slow on a loaded machine, so waited for generously.
    await until(() => attempts === 2, 10_000, "the first retry");
    link.leave(); // during the backoff
    await never(() => attempts > 2, 300, "a retry after the leave");
  });

  it("takes a room's refusal as final, without retrying", async () => {
    let attempts = 0;
    const { seen, events } = recorder();
    const link = new RoomLink("alice", async () => {
      attempts++;
      return { refused: { code: "room_full", message: "pr:1 is full" } };
    }, events, false, FAST);
    link.send({ t: "join", ack: 3 });
    expect(await link.open()).toBe(false);
    expect(attempts).toBe(1);
    expect(seen.unanswered).toEqual([[[3], { code: "room_full", message: "pr:1 is full" }]]);
    expect(seen.lost).toEqual([[{ code: "room_full", message: "pr:1 is full" }, false]]);
  });

  it("after a leave, still delivers the leaver's own message that the room acked ok, and nothing else", async () => {
    const side = roomSide();
    const { seen, events } = recorder();
    const link = new RoomLink("alice", async () => ({ ws: side.gateway }), events, true, FAST);
    await link.open();
    link.send({ t: "msg", ack: 3, message: "bye" });
    link.leave();
    side.room.send(message("other", 9)); // someone else's, after the leave: not for the leaver
    side.room.send(message("mine", 10)); // the leaver's own, broadcast just before its ack
    side.room.send('433[{"ok":true,"id":"mine","seq":10}]');
    await until(() => seen.frames.length === 2, 1000, "the own message and its ack");
    expect(seen.frames).toEqual([message("mine", 10), '433[{"ok":true,"id":"mine","seq":10}]']);
    expect(seen.left).toBe(1);
  });

  it("on a superseded close, gives up and says it was taken over", async () => {
    const side = roomSide();
    const { seen, events } = recorder();
    const link = new RoomLink("alice", async () => ({ ws: side.gateway }), events, true, FAST);
    await link.open();
    side.room.close(4001, "resumed elsewhere");
    await until(() => seen.lost.length === 1, 5000, "giving up");
    expect(link.superseded).toBe(true);
  });
});

describe("overflow of the link queue", () => {
  it("holds MAX_QUEUED_COMMANDS while the link opens, then refuses, and the client is told room_unavailable", async () => {
    const { events } = recorder();
    const link = new RoomLink("alice", () => new Promise(() => {}), events, false, FAST); // never opens
    void link.open();
    const taken = Array.from({ length: MAX_QUEUED_COMMANDS + 5 }, (_, i) => link.send({ t: "typing", ack: i }));
    expect(taken.filter(Boolean)).toHaveLength(MAX_QUEUED_COMMANDS);
    expect(taken.slice(MAX_QUEUED_COMMANDS)).toEqual([false, false, false, false, false]);

    // The chat turns a refused command into room_unavailable for that event, and only that one.
    const sent: SocketPacket[] = [];
    const transport = { sid: "s", traffic: { requests: 0, framesIn: 0, framesOut: 0 }, sendFrame() {}, sendPacket: (packet: SocketPacket) => void sent.push(packet), leaveNamespace() {} };
    const chat = new ChatSession(parseConfig({ RATE_LIMIT_PER_SECOND: "1000", RATE_LIMIT_BURST: "1000" }), { join: () => link }, timerScheduler);
    const socket = new Socket({ id: "x" }, "/", {}, transport, chat);
    chat.event(socket, "join-pr-room", [{ pullRequestId: 1, username: "alice" }], undefined);
    chat.event(socket, "send-message-to-pr-room", [{ pullRequestId: 1, username: "alice", message: "overflow" }], socket.ackFor(7));
    expect(sent).toEqual([
      { type: SocketPacketType.ACK, nsp: "/", id: 7, data: [{ ok: false, error: { code: "room_unavailable", message: expect.any(String) } }] },
    ]);
    link.leave();
  });
});
