/**
 * The real socket.io-client in Node against the Worker served by wrangler:
 * it connects, acks, survives heartbeats, sees connect_error, and reconnects by itself.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeAll, connected, client, once, sleep } from "../support/client.js";
import { serveWorker, type ServedWorker } from "../support/worker.js";

let worker: ServedWorker;

beforeAll(async () => {
  worker = await serveWorker({
    vars: { PING_INTERVAL_MS: "300", PING_TIMEOUT_MS: "200", MAX_PAYLOAD_BYTES: "4096" },
  });
});
afterAll(async () => {
  closeAll();
  await worker?.close();
});

describe("socket.io-client against the Worker", () => {
  it("connects over WebSocket and gets an ack for an emit", async () => {
    const socket = await connected(worker.url);
    expect(socket.io.engine.transport.name).toBe("websocket");
    const ack = await socket.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: 1, username: "johndoe" });
    expect(ack).toEqual({ ok: true, pullRequestId: 1, members: 1, users: ["johndoe"] });
    socket.close();
  });

  it("stays connected past 2 × (pingInterval + pingTimeout), answering the server's pings", async () => {
    const socket = await connected(worker.url);
    let pings = 0;
    let disconnects = 0;
    socket.io.engine.on("ping", () => pings++);
    socket.on("disconnect", () => disconnects++);
    await sleep(2 * (300 + 200) + 400);
    expect(pings).toBeGreaterThanOrEqual(3);
    expect(disconnects).toBe(0);
    expect(socket.connected).toBe(true);
    socket.close();
  });

  it("gets connect_error for an unknown namespace", async () => {
    const socket = client(`${worker.url}/no-such-namespace`);
    const [error] = await once(socket, "connect_error");
    expect(error.message).toBe("Invalid namespace");
    socket.close();
  });

  it("reconnects by itself after the server drops its transport, and fires connect again", async () => {
    const socket = await connected(worker.url, { reconnectionDelay: 100, reconnectionDelayMax: 200 });
    let connects = 0;
    socket.on("connect", () => connects++);
    const disconnected = once(socket, "disconnect");
    // Over maxPayload (4096 here): the server closes this client's transport (1009).
    socket.emit("send-message-to-pr-room", { pullRequestId: 1, username: "x", message: "y".repeat(10_000) });
    expect((await disconnected)[0]).toBe("transport close");
    await once(socket, "connect", 10_000);
    expect(connects).toBe(1);
    expect(await socket.timeout(5000).emitWithAck("leave-pr-room", { pullRequestId: 1, username: "x" })).toEqual({
      ok: true,
      pullRequestId: 1,
    });
    socket.close();
  });
});
