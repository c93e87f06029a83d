/**
 * Identity, origins and limits, end to end: the real socket.io-client against the
 * Worker under `wrangler dev` with AUTH_SECRET, ALLOWED_ORIGINS and small limits set.
 */
import { request } from "node:http";
import { sign } from "hono/jwt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PrRoomMessage } from "../../src/events.js";
import { closeAll, collect, connected, client, once, sleep, until } from "../support/client.js";
import { wranglerDev } from "../support/wrangler-dev.js";
import type { ServedWorker } from "../support/worker.js";

const SECRET = "test-secret-that-is-long-enough-0123456789";
const ISSUER = "https://backend.test";
const AUDIENCE = "pr-rooms";
const ALLOWED = "http://allowed.test";

let worker: ServedWorker;

beforeAll(async () => {
  const vars = {
    AUTH_SECRET: SECRET,
    AUTH_ISSUER: ISSUER,
    AUTH_AUDIENCE: AUDIENCE,
    ALLOWED_ORIGINS: ALLOWED,
    MAX_ROOMS_PER_CONNECTION: "3",
    MAX_MEMBERS_PER_ROOM: "3",
    RATE_LIMIT_PER_SECOND: "2",
    RATE_LIMIT_BURST: "5",
    CLOCK_SKEW_SECONDS: "1",
  };
  worker = await wranglerDev("wrangler.toml", Object.entries(vars).flatMap(([key, value]) => ["--var", `${key}:${value}`]));
});
afterAll(async () => {
  closeAll();
  await worker?.close();
});

const now = () => Math.floor(Date.now() / 1000);

function token(claims: Record<string, unknown> = {}, secret = SECRET, alg: "HS256" | "HS512" = "HS256") {
  return sign({ sub: "johndoe", iss: ISSUER, aud: AUDIENCE, exp: now() + 600, ...claims }, secret, alg);
}

async function as(user: string, prs?: number[]) {
  return connected(worker.url, { auth: { token: await token({ sub: user, ...(prs ? { prs } : {}) }) } });
}

describe("identity", () => {
  it.each([
    ["no token", undefined, "auth_required"],
    ["a token signed with another secret", () => token({}, "another-secret-that-is-long-enough-0000"), "token_invalid"],
    ["a token of another algorithm", () => token({}, SECRET, "HS512"), "token_invalid"],
    ["an expired token", () => token({ exp: now() - 60 }), "token_expired"],
    ["a token without exp", () => token({ exp: undefined }), "token_invalid"],
    ["a token for another issuer", () => token({ iss: "https://evil.test" }), "token_invalid"],
    ["a token for another audience", () => token({ aud: "other" }), "token_invalid"],
    ["garbage", async () => "not.a.jwt", "token_invalid"],
  ])("refuses %s with CONNECT_ERROR, and the client stops", async (_, make, code) => {
    const auth = make ? { token: await make() } : {};
    const socket = client(worker.url, { auth });
    const [error] = await once(socket, "connect_error");
    expect(error.data).toEqual({ code });
    expect(error.message.length).toBeGreaterThan(3);
    await sleep(300);
    expect(socket.active).toBe(false);
    expect(socket.connected).toBe(false);
  });

  it("ends the connection when the token expires, not only at CONNECT", async () => {
    const socket = await connected(worker.url, { auth: { token: await token({ sub: "shortlived", exp: now() + 2 }) } });
    const [reason] = await once(socket, "disconnect", 6000);
    expect(reason).toBe("io server disconnect"); // the client does not retry with the stale token
  });

  it("speaks as the token's user only, in the token's rooms only", async () => {
    const socket = await as("johndoe", [123, 124]);
    expect(await socket.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: 123, username: "johndoe" })).toMatchObject({ ok: true });
    const forged = await socket.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: 123, username: "janedoe", message: "hi" });
    expect(forged.error.code).toBe("username_mismatch");
    const elsewhere = await socket.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: 999, username: "johndoe" });
    expect(elsewhere.error.code).toBe("forbidden");
    socket.close();
  });
});

describe("origins", () => {
  /** The raw upgrade request a browser on `origin` would make. */
  function upgradeStatus(origin: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(`${worker.url}/socket.io/?EIO=4&transport=websocket`, {
        headers: { Connection: "Upgrade", Upgrade: "websocket", Origin: origin, "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==" },
      });
      req.on("upgrade", (response, socket) => {
        socket.destroy();
        resolve(response.statusCode ?? 0);
      });
      req.on("response", (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
  }

  it("refuses an upgrade from another origin with 403 before any WebSocket opens", async () => {
    expect(await upgradeStatus("http://evil.test")).toBe(403);
    expect(await upgradeStatus(ALLOWED)).toBe(101);
  });
});

describe("limits", () => {
  it("caps rooms per connection (too_many_rooms)", async () => {
    const socket = await as("roomhopper");
    for (const pr of [201, 202, 203]) {
      expect((await socket.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: pr, username: "roomhopper" })).ok).toBe(true);
    }
    await sleep(1000); // refill the rate budget (2/s)
    const fourth = await socket.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: 204, username: "roomhopper" });
    expect(fourth.error.code).toBe("too_many_rooms");
    expect((await socket.timeout(5000).emitWithAck("leave-pr-room", { pullRequestId: 201, username: "roomhopper" })).ok).toBe(true);
    expect((await socket.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: 204, username: "roomhopper" })).ok).toBe(true);
  });

  it("caps members per room (room_full), by ack and by pr-room-error", async () => {
    for (const user of ["m1", "m2", "m3"]) {
      const socket = await as(user);
      expect((await socket.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: 300, username: user })).ok).toBe(true);
    }
    const late = await as("m4");
    const ack = await late.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: 300, username: "m4" });
    expect(ack.error).toEqual({ code: "room_full", message: expect.stringContaining("full") });
    const error = once(late, "pr-room-error");
    late.emit("join-pr-room", { pullRequestId: 300, username: "m4" });
    expect((await error)[0]).toMatchObject({ event: "join-pr-room", pullRequestId: 300, code: "room_full" });
    // A refused join leaves nothing behind: sending is not_joined, not silently lost.
    await sleep(1000);
    const send = await late.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: 300, username: "m4", message: "x" });
    expect(send.error.code).toBe("not_joined");
  });

  it("refuses messages past the rate with rate_limited (never silently), and drops excess typing", async () => {
    const sender = await as("chatty");
    const listener = await as("listener");
    for (const [socket, user] of [[sender, "chatty"], [listener, "listener"]] as const) {
      expect((await socket.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: 400, username: user })).ok).toBe(true);
    }
    const received = collect<PrRoomMessage>(listener, "pr-room-message");
    const typing = collect(listener, "typing");
    const errors = collect(sender, "pr-room-error");
    const acks = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        sender.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: 400, username: "chatty", message: `n${i}` }),
      ),
    );
    const ok = acks.filter((ack) => ack.ok);
    const limited = acks.filter((ack) => !ack.ok);
    expect(ok.length).toBeGreaterThanOrEqual(3); // the burst (5) less the join
    expect(limited.length).toBeGreaterThanOrEqual(5);
    for (const ack of limited) expect(ack.error).toEqual({ code: "rate_limited", message: expect.stringContaining("2/s") });
    await until(() => received.length === ok.length, 5000, "every accepted message");
    expect(received.map((m) => m.message)).toEqual(ok.map((_, i) => acks.findIndex((a) => a === ok[i])).map((i) => `n${i}`));

    await sleep(1000);
    const secret = "a body that must never reach the logs";
    expect((await sender.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: 400, username: "chatty", message: secret })).ok).toBe(true);
    expect(worker.logs!()).not.toContain(secret);

    for (let i = 0; i < 30; i++) sender.emit("typing", { pullRequestId: 400, username: "chatty" });
    await sleep(500);
    expect(typing.length).toBeGreaterThan(0);
    expect(typing.length).toBeLessThanOrEqual(7);
    expect(errors).toEqual([]);
  });
});

describe("logs", () => {
  it("are JSON lines per lifecycle event and refusal, without tokens or message bodies", async () => {
    const logs = worker.logs!();
    const lines = logs
      .split("\n")
      .map((line) => line.slice(line.indexOf("{")))
      .filter((line) => line.startsWith('{"evt"'))
      .map((line) => JSON.parse(line));
    const events = new Set(lines.map((line) => line.evt));
    for (const evt of ["connect", "disconnect", "connect_refused", "join", "leave", "refused", "handshake_refused"]) {
      expect(events, evt).toContain(evt);
    }
    expect(lines.find((line) => line.evt === "refused" && line.code === "rate_limited")).toBeDefined();
    expect(logs).not.toContain("eyJ"); // no JWT
    expect(logs).not.toMatch(/"n\d{1,2}"/); // no message bodies (the rate test sent "n0" … "n11")
    expect(logs).not.toContain(SECRET);
  });
});
