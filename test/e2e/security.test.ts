/**
 * Identity, origins and limits, end to end, on both paths: the real socket.io-client
 * against the Worker under `wrangler dev` with AUTH_SECRET, ALLOWED_ORIGINS and small
 * limits set. Every test has its own rooms and users and makes the traffic it checks,
 * the logs test included, so the tests pass in any order.
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { now, signToken } from "../shared/token.js";
import {
  ack,
  client,
  closeAll,
  collect,
  connected,
  connectedOrRefused,
  once,
  record,
  send,
  until,
  upTo,
  whileRateLimited,
  type Socket,
} from "../support/client.js";
import { paths, rawQuery, type ClientOptions } from "../support/paths.js";
import { wranglerDev } from "../support/wrangler-dev.js";
import type { ServedWorker } from "../support/worker.js";

const SECRET = "test-secret-that-is-long-enough-0123456789";
const ISSUER = "https://backend.test";
const AUDIENCE = "pr-rooms";
const ALLOWED = "http://allowed.test";
const SKEW_SECONDS = 5;
const MAX_MEMBERS = 4;
const MAX_PER_USER = 2;

let worker: ServedWorker;
let nextPr = 1;
const freshPr = () => 3000 + nextPr++;

beforeAll(async () => {
  const vars = {
    AUTH_SECRET: SECRET,
    AUTH_ISSUER: ISSUER,
    AUTH_AUDIENCE: AUDIENCE,
    ALLOWED_ORIGINS: ALLOWED,
    MAX_ROOMS_PER_CONNECTION: "3",
    MAX_MEMBERS_PER_ROOM: String(MAX_MEMBERS),
    MAX_CONNECTIONS_PER_USER: String(MAX_PER_USER),
    RATE_LIMIT_PER_SECOND: "2",
    RATE_LIMIT_BURST: "5",
    CLOCK_SKEW_SECONDS: String(SKEW_SECONDS),
  };
  worker = await wranglerDev("wrangler.toml", { vars, freshState: true });
});
afterAll(async () => {
  closeAll();
  await worker?.close();
});

function token(claims: Record<string, unknown> = {}, secret = SECRET, alg: "HS256" | "HS512" = "HS256") {
  return signToken(secret, { sub: "johndoe", iss: ISSUER, aud: AUDIENCE, ...claims }, alg);
}

/** A connection with a token for `user` (and only the pull requests `prs`, when given). */
async function as(user: string, prs: number[] | undefined, options: ClientOptions): Promise<Socket> {
  return connected(worker.url, { ...options, auth: { token: await token({ sub: user, ...(prs ? { prs } : {}) }) } });
}

const join = (socket: Socket, pullRequestId: number, username: string) => ack(socket, "join-pr-room", { pullRequestId, username });

/** The raw upgrade request (Engine.IO `query`) a browser on `origin` would make; its HTTP status. */
function upgradeStatus(origin: string, query: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${worker.url}/socket.io/?${query}`, {
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        Origin: origin,
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
      },
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

describe.each(paths)("on the %s path", (path, optionsFor) => {
  describe("identity", () => {
    it.each([
      ["no token", undefined, "auth_required"],
      ["a token signed with another secret", () => token({}, "another-secret-that-is-long-enough-0000"), "token_invalid"],
      ["a token of another algorithm", () => token({}, SECRET, "HS512"), "token_invalid"],
      ["an expired token", () => token({ exp: now() - 60 }), "token_expired"],
      ["a token expired by more than the clock skew", () => token({ exp: now() - SKEW_SECONDS - 2 }), "token_expired"],
      ["a token without exp", () => token({ exp: undefined }), "token_invalid"],
      ["a token issued (iat) beyond the clock skew in the future", () => token({ iat: now() + SKEW_SECONDS + 30 }), "token_invalid"],
      ["a token not valid (nbf) until beyond the clock skew", () => token({ nbf: now() + SKEW_SECONDS + 30 }), "token_invalid"],
      ["a token for another issuer", () => token({ iss: "https://evil.test" }), "token_invalid"],
      ["a token for another audience", () => token({ aud: "other" }), "token_invalid"],
      ["a token whose sub is a look-alike name", () => token({ sub: "admin\u200B" }), "token_invalid"],
      ["garbage", async () => "not.a.jwt", "token_invalid"],
    ])("refuses %s with CONNECT_ERROR, and the client stops", async (_, make, code) => {
      const auth = make ? { token: await make() } : {};
      const socket = client(worker.url, { ...optionsFor(freshPr()), auth });
      const [error] = await once(socket, "connect_error");
      expect(error.data).toEqual({ code });
      expect(error.message.length).toBeGreaterThan(3);
      // socket.io-client gives up on a CONNECT_ERROR from the server: it does not retry.
      expect(socket.active).toBe(false);
      expect(socket.connected).toBe(false);
    });

    it("accepts iat and nbf a few seconds ahead, within CLOCK_SKEW_SECONDS", async () => {
      const pr = freshPr();
      const ahead = now() + 2;
      const socket = await connected(worker.url, { ...optionsFor(pr), auth: { token: await token({ sub: "early-bird", iat: ahead, nbf: ahead }) } });
      expect(await join(socket, pr, "early-bird")).toMatchObject({ ok: true, users: ["early-bird"] });
    });

    it("accepts exp a little in the past, within the skew, and ends the connection at exp + skew, not only at CONNECT", async () => {
      const pr = freshPr();
      const exp = now() - 2; // 2–3 s ago: the connection has 2–3 s left, time enough to connect and join on a busy machine
      const socket = await connected(worker.url, { ...optionsFor(pr), auth: { token: await token({ sub: "shortlived", exp }) } });
      expect(await join(socket, pr, "shortlived")).toMatchObject({ ok: true });
      const [reason] = await once(socket, "disconnect", 10_000);
      expect(reason).toBe("io server disconnect"); // the client does not retry with the stale token
      expect(Date.now()).toBeGreaterThanOrEqual((exp + SKEW_SECONDS) * 1000 - 50);
    });

    it("speaks as the token's user only, in the token's rooms only", async () => {
      const [mine, alsoMine, notMine] = [freshPr(), freshPr(), freshPr()];
      const socket = await as("speaker", [mine, alsoMine], optionsFor(mine));
      expect(await join(socket, mine, "speaker")).toMatchObject({ ok: true });
      const forged = await send(socket, mine, "janedoe", "hi");
      expect(forged.error.code).toBe("username_mismatch");
      const forgedJoin = await join(socket, mine, "janedoe");
      expect(forgedJoin.error.code).toBe("username_mismatch");
      // On the direct path a connection is for one room: another is reached on a connection of its own.
      const elsewhere = path === "gateway" ? socket : await as("speaker", [mine, alsoMine], optionsFor(notMine));
      expect((await join(elsewhere, notMine, "speaker")).error.code).toBe("forbidden");
      if (path === "direct") expect((await join(socket, alsoMine, "speaker")).error.code).toBe("room_mismatch");
    });

    it("a token's sub in NFD is the same user as a payload in NFC, and the other way round", async () => {
      const pr = freshPr();
      const composed = `Jos\u00e9-${path}`;
      const decomposed = `Jose\u0301-${path}`;
      const first = await as(decomposed, [pr], optionsFor(pr));
      expect(await join(first, pr, composed)).toMatchObject({ ok: true, users: [composed] });
      const atFirst = record(first);
      const second = await as(composed, [pr], optionsFor(pr));
      expect(await join(second, pr, decomposed)).toMatchObject({ ok: true, members: 1, users: [composed] });
      expect(await send(second, pr, composed, "same person")).toMatchObject({ ok: true });
      expect(await send(first, pr, decomposed, "still me")).toMatchObject({ ok: true });
      await until(() => atFirst.filter(([event]) => event === "pr-room-message").length === 2, 5000, "both messages");
      expect(atFirst.map(([event, m]) => [event, m.username, m.message])).toEqual([
        ["pr-room-message", composed, "same person"],
        ["pr-room-message", composed, "still me"],
      ]);
    });
  });

  describe("origins", () => {
    it("refuses an upgrade from another origin with 403 before any WebSocket opens", async () => {
      const query = rawQuery(path, freshPr());
      expect(await upgradeStatus("http://evil.test", query)).toBe(403);
      expect(await upgradeStatus(ALLOWED, query)).toBe(101);
    });
  });

  describe("limits", () => {
    it("caps members per room (room_full), by ack and by pr-room-error", async () => {
      const pr = freshPr();
      for (let i = 1; i <= MAX_MEMBERS; i++) {
        const socket = await as(`member-${i}`, undefined, optionsFor(pr));
        expect((await join(socket, pr, `member-${i}`)).ok).toBe(true);
      }
      const late = await connectedOrRefused(worker.url, { ...optionsFor(pr), auth: { token: await token({ sub: "latecomer" }) } });
      const answer = await join(late, pr, "latecomer");
      expect(answer.error).toEqual({ code: "room_full", message: expect.stringContaining("full") });
      const error = once(late, "pr-room-error");
      late.emit("join-pr-room", { pullRequestId: pr, username: "latecomer" });
      expect((await error)[0]).toMatchObject({ event: "join-pr-room", pullRequestId: pr, code: "room_full" });
      // A refused join leaves nothing behind: sending is not_joined, not silently lost.
      expect((await send(late, pr, "latecomer", "x")).error.code).toBe("not_joined");
      expect(late.connected).toBe(true);
    });

    it(`caps one user's connections in a room (too_many_connections at ${MAX_PER_USER + 1}), and others still get in`, async () => {
      const pr = freshPr();
      const tabs = [];
      for (let i = 0; i <= MAX_PER_USER; i++) tabs.push(await as("tabby", [pr], optionsFor(pr)));
      for (const tab of tabs.slice(0, MAX_PER_USER)) expect((await join(tab, pr, "tabby")).ok).toBe(true);
      const extra = tabs[MAX_PER_USER]!;
      const refused = await join(extra, pr, "tabby");
      expect(refused.error).toEqual({ code: "too_many_connections", message: expect.stringContaining(String(MAX_PER_USER)) });
      const error = once(extra, "pr-room-error");
      extra.emit("join-pr-room", { pullRequestId: pr, username: "tabby" });
      expect((await error)[0]).toMatchObject({ event: "join-pr-room", pullRequestId: pr, code: "too_many_connections" });

      const friend = await as("friend", [pr], optionsFor(pr));
      expect(await join(friend, pr, "friend")).toMatchObject({ ok: true, members: 2, users: ["friend", "tabby"] });

      // One tab leaves: the extra one gets in once the room has seen that (polled, with its rate budget).
      expect((await ack(tabs[0]!, "leave-pr-room", { pullRequestId: pr, username: "tabby" })).ok).toBe(true);
      const admitted = await whileRateLimited(() => whileRateLimited(() => join(extra, pr, "tabby"), 10_000, "too_many_connections"));
      expect(admitted).toMatchObject({ ok: true, users: ["friend", "tabby"] });
    });

    it("refuses messages past the rate with rate_limited (never silently), and drops excess typing", async () => {
      const pr = freshPr();
      const sender = await as("chatty", [pr], optionsFor(pr));
      const listener = await as("listener", [pr], optionsFor(pr));
      for (const [socket, user] of [[sender, "chatty"], [listener, "listener"]] as const) {
        expect((await join(socket, pr, user)).ok).toBe(true);
      }
      const atListener = record(listener);
      const errors = collect(sender, "pr-room-error");
      const acks = await Promise.all(Array.from({ length: 12 }, (_, i) => send(sender, pr, "chatty", `n${i}`)));
      const ok = acks.filter((answer) => answer.ok);
      const limited = acks.filter((answer) => !answer.ok);
      expect(ok.length).toBeGreaterThanOrEqual(3); // the burst (5) less the join
      expect(limited.length).toBeGreaterThanOrEqual(5);
      for (const answer of limited) expect(answer.error).toEqual({ code: "rate_limited", message: expect.stringContaining("2/s") });
      const accepted = acks.flatMap((answer, i) => (answer.ok ? [`n${i}`] : []));

      for (let i = 0; i < 30; i++) sender.emit("typing", { pullRequestId: pr, username: "chatty" });
      // The marker goes out once the budget allows; the typing the room relayed is ahead of it.
      const text = "after the typing burst";
      expect(await whileRateLimited(() => send(sender, pr, "chatty", text))).toMatchObject({ ok: true });
      await until(() => atListener.some(([event, m]) => event === "pr-room-message" && m.message === text), 5000, "the marker");
      const seen = upTo(atListener, text);
      expect(seen.filter(([event]) => event === "pr-room-message").map(([, m]) => m.message)).toEqual([...accepted, text]);
      const typing = seen.filter(([event]) => event === "typing");
      expect(typing.length).toBeGreaterThan(0);
      expect(typing.length).toBeLessThanOrEqual(7);
      expect(errors).toEqual([]);
    });
  });

  describe("logs", () => {
    interface Line {
      evt: string;
      [field: string]: unknown;
    }
    const lines = (): Line[] =>
      worker
        .logs!()
        .split("\n")
        .map((line) => line.slice(line.indexOf("{")))
        .filter((line) => line.startsWith('{"evt"'))
        .map((line) => JSON.parse(line));

    it("are JSON lines per lifecycle event and refusal, with sid and socketId, without tokens or message bodies", async () => {
      const pr = freshPr();
      const user = `logged-${path}`;
      const body = `a body that must never reach the logs (${path})`;
      const query = rawQuery(path, pr);
      const refusedUpgrades = () => lines().filter((line) => line.evt === "handshake_refused" && line.status === 403).length;

      // handshake_refused: a browser on another origin.
      const upgradesBefore = refusedUpgrades();
      expect(await upgradeStatus("http://evil.test", query)).toBe(403);
      // connect_refused: no token.
      const anonymous = client(worker.url, { ...optionsFor(pr), auth: {} });
      // The client drops its Engine.IO session once refused: its id is read while it is open.
      let anonymousSid = "";
      anonymous.io.once("open", () => (anonymousSid = anonymous.io.engine.id));
      await once(anonymous, "connect_error");
      // connect, join, a message, refusals past the rate, leave, disconnect.
      const socket = await as(user, [pr], optionsFor(pr));
      const sid = socket.io.engine.id;
      const socketId = socket.id;
      expect((await join(socket, pr, user)).ok).toBe(true);
      expect((await send(socket, pr, user, body)).ok).toBe(true);
      const burst = await Promise.all(Array.from({ length: 8 }, () => send(socket, pr, user, body)));
      expect(burst.some((answer) => answer.error?.code === "rate_limited")).toBe(true);
      expect(await whileRateLimited(() => ack(socket, "leave-pr-room", { pullRequestId: pr, username: user }))).toMatchObject({ ok: true });
      socket.close();

      const mine = (line: Line) => line.sid === sid;
      await until(() => lines().some((line) => mine(line) && line.evt === "disconnect"), 10_000, "this connection's disconnect line");
      await until(() => refusedUpgrades() > upgradesBefore, 10_000, "the refused upgrade's line");
      await until(() => lines().some((line) => line.evt === "connect_refused" && line.sid === anonymousSid), 10_000, "the refused CONNECT's line");

      const own = lines().filter(mine);
      expect(own.find((line) => line.evt === "connect")).toBeDefined();
      expect(own.find((line) => line.evt === "join")).toMatchObject({ sid, socketId, pr: String(pr), user });
      expect(own.find((line) => line.evt === "refused")).toMatchObject({ sid, socketId, event: "send-message-to-pr-room", code: "rate_limited" });
      expect(own.find((line) => line.evt === "leave")).toMatchObject({ sid, socketId, pr: String(pr), user });
      expect(own.find((line) => line.evt === "disconnect")).toMatchObject({ sid });
      const logs = worker.logs!();
      expect(logs).not.toContain(body);
      expect(logs).not.toContain("eyJ"); // no JWT
      expect(logs).not.toContain(SECRET);
    });
  });
});

describe("limits on the gateway path only", () => {
  it("caps rooms per connection (too_many_rooms)", async () => {
    const prs = [freshPr(), freshPr(), freshPr(), freshPr()];
    const socket = await as("roomhopper", undefined, {});
    for (const pr of prs.slice(0, 3)) expect((await join(socket, pr, "roomhopper")).ok).toBe(true);
    const fourth = await whileRateLimited(() => join(socket, prs[3]!, "roomhopper"));
    expect(fourth.error.code).toBe("too_many_rooms");
    expect((await whileRateLimited(() => ack(socket, "leave-pr-room", { pullRequestId: prs[0], username: "roomhopper" }))).ok).toBe(true);
    expect(await whileRateLimited(() => join(socket, prs[3]!, "roomhopper"))).toMatchObject({ ok: true });
    // Still in the other two rooms, and in the new one.
    for (const pr of prs.slice(1)) expect(await whileRateLimited(() => send(socket, pr, "roomhopper", "still here"))).toMatchObject({ ok: true });
  });
});
