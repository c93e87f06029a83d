/**
 * HTTP long-polling end to end, against the Worker served by wrangler: socket.io-client
 * with its default options (polling first, then upgraded to WebSocket), polling-only
 * clients in the same rooms as WebSocket clients, nothing lost or repeated across an
 * upgrade in the middle of a stream, and the heartbeat over polling.
 */
import { NodeWebSocket, NodeXHR } from "engine.io-client";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PrRoomMessage } from "../../src/chat/events.js";
import { collect, once, until } from "../support/client.js";
import { serveWorker, type ServedWorker } from "../support/worker.js";

let worker: ServedWorker;
let nextPr = 1;
const freshPr = () => 9000 + nextPr++;
const sockets = new Set<Socket>();

beforeAll(async () => {
  worker = await serveWorker({
    vars: { RATE_LIMIT_PER_SECOND: "1000", RATE_LIMIT_BURST: "1000", PING_INTERVAL_MS: "1000", PING_TIMEOUT_MS: "1000" },
  });
});
afterAll(async () => {
  for (const socket of sockets) socket.close();
  await worker?.close();
});

/** socket.io-client as a page would make it: default options unless told otherwise. */
function open(options: Parameters<typeof io>[1] = {}): Socket {
  const socket = io(worker.url, { forceNew: true, ...options });
  sockets.add(socket);
  return socket;
}

async function join(socket: Socket, pullRequestId: number, username: string): Promise<void> {
  if (!socket.connected) await once(socket, "connect", 10_000);
  expect(await socket.timeout(5000).emitWithAck("join-pr-room", { pullRequestId, username })).toMatchObject({ ok: true });
}

const transportOf = (socket: Socket) => socket.io.engine.transport.name;

describe("socket.io-client with its default options", () => {
  it("connects by polling, upgrades to WebSocket, and chats on both", async () => {
    const pr = freshPr();
    const socket = open();
    await once(socket, "connect", 10_000);
    await join(socket, pr, "dee");
    const seen = collect<PrRoomMessage>(socket, "pr-room-message");
    expect(await socket.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "dee", message: "one" })).toMatchObject({ ok: true });
    await until(() => transportOf(socket) === "websocket", 10_000, "the upgrade");
    expect(await socket.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "dee", message: "two" })).toMatchObject({ ok: true });
    await until(() => seen.length === 2, 5000, "both messages");
    expect(seen.map((m) => m.message)).toEqual(["one", "two"]);
  });
});

describe("polling-only clients", () => {
  it("chat with WebSocket clients in the same room", async () => {
    const pr = freshPr();
    const polling = open({ transports: ["polling"] });
    const websocket = open({ transports: ["websocket"] });
    await join(polling, pr, "pol");
    await join(websocket, pr, "web");
    expect(transportOf(polling)).toBe("polling");
    const atPolling = collect<PrRoomMessage>(polling, "pr-room-message");
    const atWebsocket = collect<PrRoomMessage>(websocket, "pr-room-message");
    const typing = once(websocket, "typing");
    polling.emit("typing", { pullRequestId: pr, username: "pol" });
    expect((await typing)[0]).toMatchObject({ username: "pol" });
    for (let i = 0; i < 10; i++) {
      const [from, name] = i % 2 === 0 ? [polling, "pol"] : [websocket, "web"];
      expect(await from.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: name, message: `m${i}` })).toMatchObject({ ok: true });
    }
    await until(() => atPolling.length === 10 && atWebsocket.length === 10, 5000, "ten messages each");
    const expected = Array.from({ length: 10 }, (_, i) => `m${i}`);
    expect(atPolling.map((m) => m.message)).toEqual(expected);
    expect(atWebsocket.map((m) => m.message)).toEqual(expected);
    expect(transportOf(polling)).toBe("polling");
  });
});

describe("the upgrade in the middle of a stream", () => {
  it("delivers every message exactly once, in order, to every member", async () => {
    const pr = freshPr();
    // The upgrading client opens its WebSocket only when the test says so: mid-stream.
    let letProbe!: () => void;
    const gate = new Promise<void>((resolve) => (letProbe = resolve));
    class GatedWebSocket extends NodeWebSocket {
      override doOpen(): this {
        void gate.then(() => super.doOpen());
        return this;
      }
    }
    const upgrading = open({ transports: [NodeXHR, GatedWebSocket] } as never);
    const steady = open({ transports: ["websocket"] });
    const pollingOnly = open({ transports: ["polling"] });
    await join(upgrading, pr, "up");
    await join(steady, pr, "ws");
    await join(pollingOnly, pr, "po");
    const members = { upgrading, steady, pollingOnly };
    const received = Object.fromEntries(Object.entries(members).map(([name, socket]) => [name, collect<PrRoomMessage>(socket, "pr-room-message")]));
    let upgradedAfter = -1;
    upgrading.io.engine.on("upgrade", () => (upgradedAfter = received.upgrading!.length));

    /** Sends `count` messages as `username`, each once the one before is acked (continuously, in order). */
    async function stream(socket: Socket, username: string, count: number) {
      for (let i = 0; i < count; i++) {
        const message = `${username}:${i}`;
        const ack = await socket.timeout(10_000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username, message });
        expect(ack, message).toMatchObject({ ok: true });
      }
    }

    const sending = Promise.all([stream(steady, "ws", 200), stream(upgrading, "up", 100)]);
    await until(() => received.upgrading!.length >= 40, 20_000, "the stream under way");
    letProbe();
    await sending;
    await until(() => Object.values(received).every((seen) => seen.length === 300), 20_000, "every message everywhere");

    expect(transportOf(upgrading)).toBe("websocket");
    expect(upgradedAfter).toBeGreaterThan(0);
    expect(upgradedAfter).toBeLessThan(300);
    for (const [name, seen] of Object.entries(received)) {
      for (const sender of ["ws", "up"]) {
        const texts = seen.filter((m) => m.username === sender).map((m) => m.message);
        const count = sender === "ws" ? 200 : 100;
        expect(texts, `${name} from ${sender}`).toEqual(Array.from({ length: count }, (_, i) => `${sender}:${i}`));
      }
    }
  }, 60_000);
});

describe("the heartbeat over polling", () => {
  const base = () => `${worker.url}/socket.io/?EIO=4&transport=polling`;

  it("ends a session whose client stops answering pings", async () => {
    const opened = await (await fetch(base())).text();
    const sid = JSON.parse(opened.slice(1)).sid;
    await fetch(`${base()}&sid=${sid}`, { method: "POST", body: "40" });
    const packets: string[] = [];
    // Poll without ever sending a pong: a ping comes, then the close packet, then the session is unknown.
    for (let i = 0; i < 10 && !packets.includes("1"); i++) {
      const response = await fetch(`${base()}&sid=${sid}`);
      expect(response.status).toBe(200);
      packets.push(...(await response.text()).split("\x1e"));
    }
    expect(packets).toContain("2");
    expect(packets.at(-1)).toBe("1");
    const after = await fetch(`${base()}&sid=${sid}`);
    expect(after.status).toBe(400);
    expect(await after.json()).toEqual({ code: 1, message: "Session ID unknown" });
  });

  it("keeps a polling-only client connected across several pings", async () => {
    const socket = open({ transports: ["polling"] });
    await once(socket, "connect", 10_000);
    let disconnected = false;
    socket.on("disconnect", () => (disconnected = true));
    let pings = 0;
    socket.io.engine.on("ping", () => pings++);
    await until(() => pings >= 3, 10_000, "three pings");
    expect(disconnected).toBe(false);
    expect(socket.connected).toBe(true);
  });
});
