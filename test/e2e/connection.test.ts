/**
 * The real socket.io-client in Node against the Worker served by wrangler, on both paths:
 * it connects, acks, survives heartbeats, sees connect_error, and reconnects by itself.
 * On the direct path the room holds the socket, and its alarm drives the heartbeat.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ack, client, closeAll, connected, once, until } from "../support/client.js";
import { paths } from "../support/paths.js";
import { serveWorker, type ServedWorker } from "../support/worker.js";

// A short interval, so several pings come within a test; a timeout a loaded machine's pong still meets.
const PING_INTERVAL_MS = 300;
const PING_TIMEOUT_MS = 1000;

let worker: ServedWorker;
let nextPr = 1;
const freshPr = () => 9000 + nextPr++;

beforeAll(async () => {
  worker = await serveWorker({
    vars: { PING_INTERVAL_MS: String(PING_INTERVAL_MS), DIRECT_PING_INTERVAL_MS: String(PING_INTERVAL_MS), PING_TIMEOUT_MS: String(PING_TIMEOUT_MS), MAX_PAYLOAD_BYTES: "4096" },
  });
});
afterAll(async () => {
  closeAll();
  await worker?.close();
});

describe.each(paths)("socket.io-client against the Worker on the %s path", (_path, optionsFor) => {
  it("connects over WebSocket and gets an ack for an emit", async () => {
    const pr = freshPr();
    const socket = await connected(worker.url, optionsFor(pr));
    expect(socket.io.engine.transport.name).toBe("websocket");
    expect(await ack(socket, "join-pr-room", { pullRequestId: pr, username: "johndoe" })).toEqual({
      ok: true,
      pullRequestId: pr,
      members: 1,
      users: ["johndoe"],
      seq: 0,
    });
    socket.close();
  });

  it("stays connected past 2 × (pingInterval + pingTimeout), answering the server's pings", async () => {
    const pr = freshPr();
    const socket = await connected(worker.url, optionsFor(pr));
    expect((await ack(socket, "join-pr-room", { pullRequestId: pr, username: "patient" })).ok).toBe(true);
    const since = Date.now();
    let pings = 0;
    let disconnects = 0;
    socket.io.engine.on("ping", () => pings++);
    socket.on("disconnect", () => disconnects++);
    // A connection whose pongs went unheard would be closed within pingInterval + pingTimeout.
    await until(() => pings >= 3 && Date.now() - since >= 2 * (PING_INTERVAL_MS + PING_TIMEOUT_MS), 10_000, "three pings, past twice the deadline");
    expect(disconnects).toBe(0);
    expect(socket.connected).toBe(true);
    // And the session is the same one, still in its room.
    expect(await ack(socket, "get-pr-room-users", { pullRequestId: pr })).toEqual({ ok: true, pullRequestId: pr, users: ["patient"] });
    socket.close();
  });

  it("gets connect_error for an unknown namespace", async () => {
    const socket = client(`${worker.url}/no-such-namespace`, optionsFor(freshPr()));
    const [error] = await once(socket, "connect_error");
    expect(error.message).toBe("Invalid namespace");
    socket.close();
  });

  it("reconnects by itself after the server drops its transport, and fires connect again", async () => {
    const pr = freshPr();
    const socket = await connected(worker.url, { ...optionsFor(pr), reconnectionDelay: 100, reconnectionDelayMax: 200 });
    let connects = 0;
    socket.on("connect", () => connects++);
    const disconnected = once(socket, "disconnect");
    // Over maxPayload (4096 here): the server closes this client's transport (1009).
    socket.emit("send-message-to-pr-room", { pullRequestId: pr, username: "x", message: "y".repeat(10_000) });
    expect((await disconnected)[0]).toBe("transport close");
    await once(socket, "connect", 10_000);
    expect(connects).toBe(1);
    expect(await ack(socket, "join-pr-room", { pullRequestId: pr, username: "x" })).toMatchObject({ ok: true, users: ["x"] });
    expect(await ack(socket, "leave-pr-room", { pullRequestId: pr, username: "x" })).toEqual({ ok: true, pullRequestId: pr });
    socket.close();
  });
});
