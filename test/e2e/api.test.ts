/**
 * The HTTP API end to end: real HTTP requests and a real socket.io-client member against
 * the Worker under `wrangler dev` with AUTH_SECRET set. Every test uses its own rooms and
 * token subjects, so none depends on another's order or budget.
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import type { ClientToServerEvents, ServerToClientEvents, ServerPayload } from "pr-rooms/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { now, signToken } from "../shared/token.js";
import { closeAll, collect, connected, until, type Socket } from "../support/client.js";
import type { ServedWorker } from "../support/worker.js";
import { wranglerDev } from "../support/wrangler-dev.js";

const SECRET = "api-test-secret-that-is-long-enough-0123";
const MAX_PAYLOAD_BYTES = 65_536;

let worker: ServedWorker;
// wrangler dev keeps rooms (and their clientMessageIds) and rate counts in .wrangler/state across
// runs: names unique to this run keep a rerun from meeting the last run's messages and budgets.
const run = Math.random().toString(36).slice(2, 8);
let nextPr = Math.floor(Math.random() * 1e9) * 1000;
/** A room no other test, or earlier run, uses. */
const freshPr = () => ++nextPr;
let nextSubject = 1;
/** A token subject no other test uses: each has its own rate budget. */
const freshSubject = (name: string) => `${name}-${run}-${nextSubject++}`;

beforeAll(async () => {
  // A short clock skew, so a token expired a minute ago is expired here.
  // History on, so its page can be read over HTTP.
  worker = await wranglerDev("wrangler.toml", { vars: { AUTH_SECRET: SECRET, CLOCK_SKEW_SECONDS: "5", HISTORY_RETENTION_DAYS: "7" } });
});
afterAll(async () => {
  closeAll();
  await worker?.close();
});

function token(claims: Record<string, unknown>, secret = SECRET, alg: "HS256" | "HS512" = "HS256"): Promise<string> {
  return signToken(secret, { iat: now(), ...claims }, alg);
}

const publisher = (sub = freshSubject("ci-bot"), claims: Record<string, unknown> = {}) => token({ sub, scope: "publish", ...claims });

/** A token with `alg: none` and no signature: must never be accepted. */
function unsignedToken(claims: Record<string, unknown>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "none", typ: "JWT" })}.${part({ exp: now() + 600, ...claims })}.`;
}

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

async function call(method: "GET" | "POST" | "DELETE", path: string, init: { token?: string; json?: unknown; body?: BodyInit; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token !== undefined) headers.Authorization = `Bearer ${init.token}`;
  let body = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    headers["Content-Type"] ??= "application/json";
  }
  const response = await fetch(`${worker.url}${path}`, { method, headers, body, ...(body instanceof ReadableStream ? { duplex: "half" } : {}) } as RequestInit);
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Left as text: the assertion on it will show what came back.
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

const publish = (pr: number | string, init: Parameters<typeof call>[2]) => call("POST", `/api/pull-requests/${pr}/messages`, init);
const readRoom = (pr: number | string, init: Parameters<typeof call>[2]) => call("GET", `/api/pull-requests/${pr}`, init);

/** The documented error body. */
const refused = (code: string) => ({ ok: false, error: { code, message: expect.any(String) } });

type TypedSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** A socket.io member of `pr` (its token has no API scope: sockets need none). */
async function member(pr: number, username = freshSubject("reviewer")): Promise<{ socket: TypedSocket; messages: ServerPayload<"pr-room-message">[] }> {
  const socket = (await connected(worker.url, { auth: { token: await token({ sub: username }) } })) as unknown as TypedSocket;
  const messages = collect<ServerPayload<"pr-room-message">>(socket as unknown as Socket, "pr-room-message");
  expect(await socket.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: pr, username })).toMatchObject({ ok: true });
  return { socket, messages };
}

describe("publish", () => {
  it("delivers to the room's members as an ordinary pr-room-message from the token's subject", async () => {
    const pr = freshPr();
    const { messages } = await member(pr);
    const subject = freshSubject("ci-bot");
    const answer = await publish(pr, { token: await publisher(subject), json: { message: "Build #512 passed" } });
    expect(answer.status).toBe(201);
    expect(answer.headers.get("content-type")).toContain("application/json");
    expect(answer.body).toEqual({ ok: true, id: expect.any(String), seq: expect.any(Number) });
    await until(() => messages.length === 1, 5000, "the published message");
    expect(messages[0]).toEqual({
      pullRequestId: pr,
      username: subject,
      message: "Build #512 passed",
      id: answer.body.id,
      seq: answer.body.seq,
      sentAt: expect.any(Number),
      mentions: [],
    });
  });

  it("takes the room id as the socket does: 0123 is room 123", async () => {
    const pr = freshPr();
    const { messages } = await member(pr);
    const answer = await publish(`000${pr}`, { token: await publisher(), json: { message: "padded" } });
    expect(answer.status).toBe(201);
    await until(() => messages.some((m) => m.message === "padded"), 5000, "the message in the canonical room");
  });

  it("answers a repeated clientMessageId with the first message's id and seq, and delivers it once", async () => {
    const pr = freshPr();
    const { messages } = await member(pr);
    const subject = freshSubject("ci-bot");
    const bearer = await publisher(subject);
    const first = await publish(pr, { token: bearer, json: { message: "deploy started", clientMessageId: "deploy-1" } });
    const again = await publish(pr, { token: bearer, json: { message: "deploy started", clientMessageId: "deploy-1" } });
    expect(first.status).toBe(201);
    expect(again).toMatchObject({ status: 201, body: first.body });
    // The same id from another subject, or to another room, is another message.
    const other = await publish(pr, { token: await publisher(), json: { message: "deploy started", clientMessageId: "deploy-1" } });
    expect(other.status).toBe(201);
    expect(other.body.id).not.toBe(first.body.id);
    const elsewhere = await publish(freshPr(), { token: bearer, json: { message: "deploy started", clientMessageId: "deploy-1" } });
    expect(elsewhere.status).toBe(201);
    expect(elsewhere.body.id).not.toBe(first.body.id);
    // A marker sent after both: once it is here, a duplicate would have been too (one room, one order).
    await publish(pr, { token: bearer, json: { message: "marker" } });
    await until(() => messages.some((m) => m.message === "marker"), 5000, "the marker");
    expect(messages.filter((m) => m.id === first.body.id)).toHaveLength(1);
    expect(messages.map((m) => m.message)).toEqual(["deploy started", "deploy started", "marker"]);
  });

  it("applies the socket's message rules", async () => {
    const pr = freshPr();
    const bearer = await publisher();
    expect(await publish(pr, { token: bearer, json: { message: "x".repeat(4001) } })).toMatchObject({
      status: 400,
      body: { ok: false, error: { code: "message_too_long", message: "message is 4001 characters; the limit is 4000" } },
    });
    expect((await publish(pr, { token: bearer, json: { message: "x".repeat(4000) } })).status).toBe(201);
    for (const body of [{ message: "   " }, { message: 42 }, {}, { message: "hi", clientMessageId: "" }, { message: "hi", clientMessageId: "c".repeat(65) }]) {
      const answer = await publish(pr, { token: bearer, json: body });
      expect(answer, JSON.stringify(body)).toMatchObject({ status: 400, body: refused("invalid_payload") });
    }
    expect((await publish(pr, { token: bearer, json: { message: "   " } })).body.error.message).toBe("message: message must not be empty or only white space");
  });
});

describe("read", () => {
  it("answers who is in the room, to read and publish scopes alike", async () => {
    const pr = freshPr();
    const { socket } = await member(pr, "janedoe");
    const expected = { pullRequestId: pr, members: 1, users: ["janedoe"] };
    expect(await readRoom(pr, { token: await token({ sub: freshSubject("dashboard"), scope: "read" }) })).toMatchObject({ status: 200, body: expected });
    expect(await readRoom(pr, { token: await publisher() })).toMatchObject({ status: 200, body: expected });
    socket.close();
  });
});

describe("history and moderation", () => {
  it("reads the room's history page by page, as get-pr-room-history answers, with scope read", async () => {
    const pr = freshPr();
    const subject = freshSubject("ci-bot");
    const sent = [];
    for (let n = 1; n <= 5; n++) sent.push((await publish(pr, { token: await publisher(subject), json: { message: `step ${n} @ann` } })).body);
    const reader = await token({ sub: freshSubject("dashboard"), scope: "read" });
    const latest = await call("GET", `/api/pull-requests/${pr}/messages?limit=2`, { token: reader });
    expect(latest.status).toBe(200);
    expect(latest.body).toEqual({
      ok: true,
      hasMore: true,
      messages: [sent[3], sent[4]].map((m, i) => ({ pullRequestId: pr, username: subject, message: `step ${i + 4} @ann`, id: m.id, seq: m.seq, sentAt: expect.any(Number), mentions: ["ann"] })),
    });
    const rest = await call("GET", `/api/pull-requests/${pr}/messages?before=${sent[3].seq}`, { token: reader });
    expect(rest.body.messages.map((m: any) => m.message)).toEqual(["step 1 @ann", "step 2 @ann", "step 3 @ann"]);
    expect(rest.body.hasMore).toBe(false);
    expect((await call("GET", `/api/pull-requests/${pr}/messages?limit=101`, { token: reader })).body).toEqual(refused("invalid_payload"));
    expect((await call("GET", `/api/pull-requests/${pr}/messages?before=abc`, { token: reader })).status).toBe(400);
  });

  it("deletes any message with scope moderate: members hear it, history shows it deleted; other scopes may not", async () => {
    const pr = freshPr();
    const { socket } = await member(pr);
    const deletions = collect<ServerPayload<"pr-room-message-deleted">>(socket as unknown as Socket, "pr-room-message-deleted");
    const sent = (await publish(pr, { token: await publisher(), json: { message: "oops, a secret" } })).body;
    const path = `/api/pull-requests/${pr}/messages/${sent.id}`;
    for (const scope of ["publish", "read", "chat"]) {
      expect((await call("DELETE", path, { token: await token({ sub: freshSubject("x"), scope }) })).status).toBe(403);
    }
    const moderator = await token({ sub: freshSubject("moderator"), scope: "moderate" });
    const answer = await call("DELETE", path, { token: moderator });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ ok: true, id: sent.id, seq: sent.seq + 1 });
    await until(() => deletions.length === 1, 5000, "the delete, live");
    expect(deletions[0]).toEqual({ pullRequestId: pr, id: sent.id, seq: sent.seq + 1 });
    const page = await call("GET", `/api/pull-requests/${pr}/messages`, { token: moderator });
    expect(page.body.messages).toEqual([{ id: sent.id, seq: sent.seq, deleted: true }]);
    expect(await call("DELETE", path, { token: moderator })).toMatchObject({ status: 404, body: refused("not_found") });
  });
});

describe("refusals", () => {
  it("401 without a usable token: auth_required, token_invalid, token_expired", async () => {
    const pr = freshPr();
    const sub = freshSubject("ci-bot");
    const cases: [string, Record<string, string>, string][] = [
      ["no Authorization", {}, "auth_required"],
      ["another scheme", { Authorization: `Basic ${Buffer.from("ci-bot:pw").toString("base64")}` }, "auth_required"],
      ["garbage", { Authorization: "Bearer not.a.jwt" }, "token_invalid"],
      ["another secret", { Authorization: `Bearer ${await token({ sub, scope: "publish" }, "another-secret-that-is-long-enough-0000")}` }, "token_invalid"],
      ["HS512", { Authorization: `Bearer ${await token({ sub, scope: "publish" }, SECRET, "HS512")}` }, "token_invalid"],
      ["alg none", { Authorization: `Bearer ${unsignedToken({ sub, scope: "publish" })}` }, "token_invalid"],
      ["no exp", { Authorization: `Bearer ${await token({ sub, scope: "publish", exp: undefined })}` }, "token_invalid"],
      ["expired", { Authorization: `Bearer ${await token({ sub, scope: "publish", exp: now() - 60 })}` }, "token_expired"],
    ];
    for (const [what, headers, code] of cases) {
      const answer = await publish(pr, { headers, json: { message: "let me in" } });
      expect(answer, what).toMatchObject({ status: 401, body: refused(code) });
      expect(answer.headers.get("www-authenticate"), what).toMatch(/^Bearer realm="pr-rooms"/);
      expect((await readRoom(pr, { headers })).status, what).toBe(401);
    }
  });

  it("403 for a scope that does not grant the operation: read cannot publish, no scope can do neither", async () => {
    const pr = freshPr();
    const { messages } = await member(pr);
    const reader = await token({ sub: freshSubject("dashboard"), scope: "read" });
    const answer = await publish(pr, { token: reader, json: { message: "sneaky" } });
    expect(answer).toMatchObject({ status: 403, body: refused("forbidden") });
    expect(answer.headers.get("www-authenticate")).toContain('error="insufficient_scope", scope="publish"');
    // A chat token (no scope) is not an API token; other scope words grant nothing.
    for (const scope of [undefined, "", "chat"]) {
      const bearer = await token({ sub: freshSubject("socket-user"), scope });
      expect((await publish(pr, { token: bearer, json: { message: "sneaky" } })).status, String(scope)).toBe(403);
      expect((await readRoom(pr, { token: bearer })).status, String(scope)).toBe(403);
    }
    // Several words: any that grants is enough.
    expect((await publish(pr, { token: await token({ sub: freshSubject("bot"), scope: "read publish" }), json: { message: "allowed" } })).status).toBe(201);
    await until(() => messages.length === 1, 5000, "the allowed message");
    expect(messages.map((m) => m.message)).toEqual(["allowed"]);
  });

  it("403 for a room outside the token's prs", async () => {
    const [allowed, other] = [freshPr(), freshPr()];
    const bearer = await publisher(freshSubject("ci-bot"), { prs: [allowed, "999999"] });
    expect((await publish(allowed, { token: bearer, json: { message: "mine" } })).status).toBe(201);
    expect((await publish(`0${allowed}`, { token: bearer, json: { message: "mine, padded" } })).status).toBe(201);
    expect(await publish(other, { token: bearer, json: { message: "not mine" } })).toMatchObject({ status: 403, body: refused("forbidden") });
    expect(await readRoom(other, { token: bearer })).toMatchObject({ status: 403, body: refused("forbidden") });
    expect((await readRoom(allowed, { token: bearer })).status).toBe(200);
  });

  it("400 for a body that is not JSON, not an object, or not UTF-8, and for a bad room id", async () => {
    const pr = freshPr();
    const bearer = await publisher();
    const json = { "Content-Type": "application/json" };
    const bodies: [string, BodyInit][] = [
      ["truncated JSON", '{"message": "hi'],
      ["not JSON at all", "hello"],
      ["empty", ""],
      ["an array", "[1]"],
      ["null", "null"],
      ["a string", '"hi"'],
      ["invalid UTF-8", new Uint8Array([0x7b, 0x22, 0x6d, 0x65, 0x73, 0x73, 0x61, 0x67, 0x65, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])],
    ];
    for (const [what, body] of bodies) {
      expect(await publish(pr, { token: bearer, body, headers: json }), what).toMatchObject({ status: 400, body: refused("invalid_payload") });
    }
    for (const id of ["abc", "0", "-1", "1.5", "1".repeat(21)]) {
      expect(await publish(id, { token: bearer, json: { message: "hi" } }), id).toMatchObject({ status: 400, body: refused("invalid_payload") });
      expect(await readRoom(id, { token: bearer }), id).toMatchObject({ status: 400, body: refused("invalid_payload") });
    }
  });

  it("415 for a body that is not declared application/json", async () => {
    const pr = freshPr();
    const bearer = await publisher();
    const body = JSON.stringify({ message: "hi" });
    for (const contentType of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"]) {
      const answer = await publish(pr, { token: bearer, body, headers: { "Content-Type": contentType } });
      expect(answer, contentType).toMatchObject({ status: 415, body: refused("invalid_payload") });
      expect(answer.body.error.message).toContain("Content-Type: application/json");
    }
    // Bytes with no Content-Type at all.
    expect(await publish(pr, { token: bearer, body: new TextEncoder().encode(body) })).toMatchObject({ status: 415, body: refused("invalid_payload") });
    // Parameters are fine.
    expect((await publish(pr, { token: bearer, body, headers: { "Content-Type": "application/json; charset=utf-8" } })).status).toBe(201);
  });

  it("413 for a body over MAX_PAYLOAD_BYTES, declared or streamed, and nothing reaches the room", async () => {
    const pr = freshPr();
    const { messages } = await member(pr);
    const bearer = await publisher();
    const huge = JSON.stringify({ message: "x".repeat(MAX_PAYLOAD_BYTES) });
    const declared = await publish(pr, { token: bearer, body: huge, headers: { "Content-Type": "application/json" } });
    expect(declared).toMatchObject({ status: 413, body: refused("payload_too_large") });
    expect(declared.body.error.message).toContain(String(MAX_PAYLOAD_BYTES));
    // No Content-Length (chunked): the cap applies to the bytes as they are read.
    const chunk = new TextEncoder().encode("x".repeat(16_384));
    let chunks = 0;
    const chunked = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (chunks++ === 0) controller.enqueue(new TextEncoder().encode('{"message":"'));
        else if (chunks <= 4 * (MAX_PAYLOAD_BYTES / chunk.length)) controller.enqueue(chunk);
        else controller.close();
      },
    });
    try {
      const streamed = await publish(pr, { token: bearer, body: chunked, headers: { "Content-Type": "application/json" } });
      expect(streamed).toMatchObject({ status: 413, body: refused("payload_too_large") });
    } catch (error) {
      // The server answered 413 and stopped reading while the client was still writing: on a
      // loaded machine the client can see the closed connection before the answer.
      expect(String((error as { cause?: { code?: string } }).cause?.code)).toMatch(/^(EPIPE|ECONNRESET)$/);
    }
    // Just under the cap is read (and then refused for its length, as a socket message would be).
    const under = JSON.stringify({ message: "x".repeat(MAX_PAYLOAD_BYTES - 20) });
    expect(await publish(pr, { token: bearer, body: under, headers: { "Content-Type": "application/json" } })).toMatchObject({
      status: 400,
      body: refused("message_too_long"),
    });
    await publish(pr, { token: bearer, json: { message: "marker" } });
    await until(() => messages.length > 0, 5000, "the marker");
    expect(messages.map((m) => m.message)).toEqual(["marker"]);
  });

  it("429 once a subject has spent its budget (120 a minute), and only for that subject", async () => {
    const pr = freshPr();
    const subject = freshSubject("greedy");
    const greedy = await token({ sub: subject, scope: "read" });
    const statuses: number[] = [];
    // The binding counts in windows aligned to the clock: a window may roll over mid-way, so
    // send until refused, up to two windows' worth.
    while (!statuses.includes(429) && statuses.length < 250) {
      const batch = await Promise.all(Array.from({ length: 10 }, () => readRoom(pr, { token: greedy })));
      statuses.push(...batch.map((answer) => answer.status));
      const limited = batch.find((answer) => answer.status === 429);
      if (limited) expect(limited.body).toEqual(refused("rate_limited"));
    }
    expect(statuses).toContain(429);
    expect(statuses.indexOf(429)).toBeGreaterThanOrEqual(120);
    expect(statuses.filter((status) => status !== 200 && status !== 429)).toEqual([]);
    // Refused before the body is looked at: a publish from the same subject is refused too.
    expect((await publish(pr, { token: await publisher(subject), json: { message: "more" } })).status).toBe(429);
    // Another subject is served.
    expect((await readRoom(pr, { token: await token({ sub: freshSubject("patient"), scope: "read" }) })).status).toBe(200);
  });

  it("404 with the error shape for API routes that do not exist", async () => {
    const bearer = await publisher();
    expect(await call("GET", "/api/pull-requests/1/nope", { token: bearer })).toMatchObject({ status: 404, body: refused("not_found") });
    expect(await call("POST", "/api/pull-requests/1", { token: bearer, json: { message: "hi" } })).toMatchObject({ status: 404, body: refused("not_found") });
  });
});

describe("OpenAPI document", () => {
  it("is a valid OpenAPI 3.1 document, served without a token, listing every route and every answer", async () => {
    const answer = await call("GET", "/api/openapi.json");
    expect(answer.status).toBe(200);
    const doc = answer.body;
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");

    expect(Object.keys(doc.paths).sort()).toEqual([
      "/api/openapi.json",
      "/api/pull-requests/{id}",
      "/api/pull-requests/{id}/messages",
      "/api/pull-requests/{id}/messages/{messageId}",
    ]);
    expect(doc.paths["/api/pull-requests/{id}/messages"].get.security).toEqual([{ bearerAuth: ["read"] }]);
    expect(doc.paths["/api/pull-requests/{id}/messages/{messageId}"].delete.security).toEqual([{ bearerAuth: ["moderate"] }]);
    expect(Object.keys(doc.paths["/api/pull-requests/{id}/messages"].get.responses)).toContain("409");
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer", bearerFormat: "JWT" });
    const post = doc.paths["/api/pull-requests/{id}/messages"].post;
    const get = doc.paths["/api/pull-requests/{id}"].get;
    expect(post.security).toEqual([{ bearerAuth: ["publish"] }]);
    expect(get.security).toEqual([{ bearerAuth: ["read"] }]);
    expect(Object.keys(post.responses).sort()).toEqual(["201", "400", "401", "403", "413", "415", "429", "500", "501", "503"]);
    expect(Object.keys(get.responses).sort()).toEqual(["200", "400", "401", "403", "429", "500", "501", "503"]);
    // Generated from the request schemas: the body's fields and limits are there.
    const body = doc.components.schemas.PublishMessage;
    expect(body.required).toEqual(["message"]);
    expect(body.properties.clientMessageId).toMatchObject({ type: "string", minLength: 1, maxLength: 64 });
    expect(post.responses["401"].content["application/json"].schema.properties.error.properties.code.enum).toEqual([
      "auth_required",
      "token_invalid",
      "token_expired",
    ]);
  });
});

describe("logs", () => {
  it("never carry tokens or message bodies", async () => {
    const pr = freshPr();
    const bearer = await publisher();
    const secret = "a body the logs must never see";
    expect((await publish(pr, { token: bearer, json: { message: secret } })).status).toBe(201);
    expect((await publish(freshPr(), { token: await token({ sub: freshSubject("x"), scope: "read" }), json: { message: secret } })).status).toBe(403);
    const logs = worker.logs!();
    expect(logs).toContain('"evt":"refused"');
    expect(logs).not.toContain(secret);
    expect(logs).not.toContain("eyJ");
    expect(logs).not.toContain(SECRET);
  });
});

