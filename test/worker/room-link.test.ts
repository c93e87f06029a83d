/**
 * RoomLink's fault handling with real WebSockets: the room's side is a WebSocketPair
 * end the test holds, so it can drop the link; failures are injected through the
 * opener, the same seam the gateway uses to reach a PrRoom.
 */
import { describe, expect, it } from "vitest";
import type { ErrorBody } from "../../src/events.js";
import { REOPEN_BACKOFF_MS, RoomLink, type LinkOpener } from "../../src/chat/room-link.js";

function roomSide(): { gateway: WebSocket; room: WebSocket; received: string[] } {
  const { 0: gateway, 1: room } = new WebSocketPair();
  room.accept();
  const received: string[] = [];
  room.addEventListener("message", (event) => received.push(event.data as string));
  return { gateway, room, received };
}

function recorder() {
  const seen = { frames: [] as string[], unanswered: [] as Array<[number[], ErrorBody]>, lost: [] as Array<[ErrorBody, boolean]> };
  return {
    seen,
    events: {
      frame: (frame: string) => seen.frames.push(frame),
      unanswered: (ids: number[], error: ErrorBody) => seen.unanswered.push([ids, error]),
      lost: (error: ErrorBody, everOpened: boolean) => seen.lost.push([error, everOpened]),
    },
  };
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("RoomLink", () => {
  it("queues commands until open, then sends them in order and forwards frames untouched", async () => {
    const side = roomSide();
    const { seen, events } = recorder();
    const link = new RoomLink("alice", async () => side.gateway, events);
    link.send({ t: "join", ack: 1 });
    link.send({ t: "msg", ack: 2, message: "hi" });
    expect(await link.open()).toBe(true);
    await settle(20);
    expect(side.received.map((text) => JSON.parse(text).t)).toEqual(["join", "msg"]);
    side.room.send('431[{"ok":true}]');
    await settle(20);
    expect(seen.frames).toEqual(['431[{"ok":true}]']);
    link.close();
  });

  it("re-opens by itself when the room drops the link, answering what the room never did", async () => {
    const first = roomSide();
    const second = roomSide();
    const sides = [first, second];
    const { seen, events } = recorder();
    const link = new RoomLink("alice", async () => sides.shift()!.gateway, events);
    await link.open();
    link.send({ t: "msg", ack: 7, message: "lost in the restart?" });
    await settle(20);
    first.room.close(1001, "evicted");
    await settle(REOPEN_BACKOFF_MS[0] + 100);
    expect(seen.unanswered).toEqual([[[7], expect.objectContaining({ code: "room_unavailable" })]]);
    expect(link.send({ t: "msg", ack: 8, message: "after" })).toBe(true);
    await settle(20);
    expect(second.received.map((text) => JSON.parse(text).ack)).toEqual([8]);
    expect(seen.lost).toEqual([]);
    link.close();
  });

  it("gives up after its retries and says so: room_unavailable, never silence", async () => {
    const first = roomSide();
    let attempts = 0;
    const opener: LinkOpener = async () => {
      attempts++;
      if (attempts === 1) return first.gateway;
      throw new Error("room unreachable");
    };
    const { seen, events } = recorder();
    const link = new RoomLink("alice", opener, events);
    await link.open();
    first.room.close(1001, "evicted");
    await settle(20);
    link.send({ t: "msg", ack: 9, message: "queued while reopening" });
    const totalBackoff = REOPEN_BACKOFF_MS.reduce((a, b) => a + b, 0);
    await settle(totalBackoff + 300);
    expect(attempts).toBe(1 + REOPEN_BACKOFF_MS.length + 1);
    expect(seen.unanswered).toEqual([[[9], expect.objectContaining({ code: "room_unavailable" })]]);
    expect(seen.lost).toEqual([[expect.objectContaining({ code: "room_unavailable" }), true]]);
    expect(link.closed).toBe(true);
    expect(link.send({ t: "typing" })).toBe(false);
  });

  it("closes a link the room accepted after the client had already left", async () => {
    const side = roomSide();
    let roomClosed = false;
    side.room.addEventListener("close", () => (roomClosed = true));
    let accept!: () => void;
    const accepted = new Promise<void>((resolve) => (accept = resolve));
    const { seen, events } = recorder();
    const link = new RoomLink("alice", async () => (await accepted, side.gateway), events);
    link.send({ t: "join", ack: 4 });
    const opening = link.open();
    link.close(); // leave while the room is still accepting
    accept();
    expect(await opening).toBe(false);
    await settle(50);
    expect(roomClosed).toBe(true);
    expect(seen.unanswered).toEqual([[[4], expect.objectContaining({ code: "not_joined" })]]);
    expect(seen.lost).toEqual([]);
  });

  it("does not re-open after a leave during its backoff", async () => {
    const first = roomSide();
    let attempts = 0;
    const { events } = recorder();
    const opener: LinkOpener = async () => {
      attempts++;
      if (attempts === 1) return first.gateway;
      if (attempts === 2) throw new Error("unreachable for a moment"); // the next try waits its backoff
      return roomSide().gateway;
    };
    const link = new RoomLink("alice", opener, events);
    await link.open();
    first.room.close(1001, "evicted");
    await settle(10);
    expect(attempts).toBe(2);
    link.close(); // during the backoff
    await settle(REOPEN_BACKOFF_MS[0] + REOPEN_BACKOFF_MS[1] + 100);
    expect(attempts).toBe(2);
  });

  it("takes a room's refusal as final, without retrying", async () => {
    let attempts = 0;
    const { seen, events } = recorder();
    const link = new RoomLink(
      "alice",
      async () => {
        attempts++;
        return { refused: { code: "room_full", message: "pr:1 is full" } };
      },
      events,
    );
    link.send({ t: "join", ack: 3 });
    expect(await link.open()).toBe(false);
    expect(attempts).toBe(1);
    expect(seen.unanswered).toEqual([[[3], { code: "room_full", message: "pr:1 is full" }]]);
    expect(seen.lost).toEqual([[{ code: "room_full", message: "pr:1 is full" }, false]]);
  });
});
