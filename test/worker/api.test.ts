/**
 * The HTTP API inside workerd: off without AUTH_SECRET, and, with it, the checks and the
 * answers that are hard to provoke from outside (a room that throws, a bad config).
 * End to end over HTTP: test/e2e/api.test.ts.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import app from "../../src/index.js";
import { signToken } from "../shared/token.js";

const SECRET = "worker-api-secret-that-is-long-enough-01";

let nextPr = 9000;
const freshPr = () => nextPr++;
let nextSubject = 1;
const run = Math.random().toString(36).slice(2, 8);
const freshSubject = () => `bot-${run}-${nextSubject++}`;

const bearer = async (claims: Record<string, unknown>) => `Bearer ${await signToken(SECRET, claims)}`;

/** The project's env (bindings and test vars) with identity on; `extra` replaces bindings. */
const envWith = (extra: Record<string, unknown> = {}) => ({ ...env, AUTH_SECRET: SECRET, ...extra }) as unknown as Env;

const publish = (pr: number, headers: Record<string, string>, body: unknown, withEnv = envWith()) =>
  app.request(`/api/pull-requests/${pr}/messages`, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) }, withEnv);

describe("HTTP API without AUTH_SECRET", () => {
  it("is disabled: every route but the document answers 501 api_disabled", async () => {
    for (const [method, path] of [["POST", "/api/pull-requests/1/messages"], ["GET", "/api/pull-requests/1"]] as const) {
      const response = await exports.default.fetch(`http://localhost${path}`, {
        method,
        headers: { "Content-Type": "application/json", Authorization: "Bearer whatever" },
        body: method === "POST" ? JSON.stringify({ message: "hi" }) : undefined,
      });
      expect(response.status, path).toBe(501);
      expect(await response.json()).toEqual({ ok: false, error: { code: "api_disabled", message: expect.stringContaining("AUTH_SECRET") } });
    }
    const document = await exports.default.fetch("http://localhost/api/openapi.json");
    expect(document.status).toBe(200);
    expect(await document.json()).toMatchObject({ openapi: "3.1.0" });
  });
});

describe("HTTP API with AUTH_SECRET", () => {
  it("publishes through the room's RPC, numbering in the room's log", async () => {
    const pr = freshPr();
    const auth = { Authorization: await bearer({ sub: "ci-bot", scope: "publish" }) };
    const first = await publish(pr, auth, { message: "one" });
    expect(first.status).toBe(201);
    expect(await first.json()).toEqual({ ok: true, id: expect.any(String), seq: 1 });
    expect(await (await publish(pr, auth, { message: "two" })).json()).toMatchObject({ seq: 2 });
  });

  it("checks the token before the body, and the body before the room", async () => {
    const pr = freshPr();
    expect((await publish(pr, {}, "not even an object")).status).toBe(401);
    const reader = { Authorization: await bearer({ sub: freshSubject(), scope: "read" }) };
    expect((await publish(pr, reader, "not even an object")).status).toBe(403);
    const writer = { Authorization: await bearer({ sub: freshSubject(), scope: "publish", prs: [pr + 1] }) };
    // A valid body for a room outside prs is forbidden; an invalid one is refused for its body first.
    expect((await publish(pr, writer, { message: "hi" })).status).toBe(403);
    expect((await publish(pr, writer, { message: "" })).status).toBe(400);
  });

  it("answers 503 room_unavailable when the room's RPC throws", async () => {
    const failing = {
      getByName: () => ({
        publish: () => Promise.reject(new Error("Durable Object reset because its code was updated.")),
        info: () => Promise.reject(new Error("Network connection lost.")),
      }),
    };
    const auth = { Authorization: await bearer({ sub: freshSubject(), scope: "publish" }) };
    const published = await publish(freshPr(), auth, { message: "hi", clientMessageId: "m1" }, envWith({ PR_ROOM: failing }));
    expect(published.status).toBe(503);
    expect(await published.json()).toEqual({ ok: false, error: { code: "room_unavailable", message: expect.stringContaining("clientMessageId") } });
    const info = await app.request(`/api/pull-requests/${freshPr()}`, { headers: auth }, envWith({ PR_ROOM: failing }));
    expect(info.status).toBe(503);
  });

  it("answers 500 server_misconfigured, without details, when the configuration is bad", async () => {
    const auth = { Authorization: await bearer({ sub: freshSubject(), scope: "publish" }) };
    const response = await publish(freshPr(), auth, { message: "hi" }, envWith({ MAX_PAYLOAD_BYTES: "lots" }));
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ ok: false, error: { code: "server_misconfigured", message: "server misconfigured; see the logs" } });
  });

  it("limits each subject with the Rate Limiting binding, emulated here", async () => {
    const pr = freshPr();
    const greedy = { Authorization: await bearer({ sub: freshSubject(), scope: "read" }) };
    const statuses: number[] = [];
    // Fixed windows aligned to the clock: send until refused, up to two windows' worth.
    while (!statuses.includes(429) && statuses.length < 250) {
      statuses.push((await app.request(`/api/pull-requests/${pr}`, { headers: greedy }, envWith())).status);
    }
    expect(statuses.indexOf(429)).toBeGreaterThanOrEqual(120);
    const other = { Authorization: await bearer({ sub: freshSubject(), scope: "read" }) };
    expect((await app.request(`/api/pull-requests/${pr}`, { headers: other }, envWith())).status).toBe(200);
  });
});

describe("HTTP API history with history off (the default)", () => {
  it("answers 409 history_disabled to a reader, as the socket event is refused", async () => {
    const response = await app.request(`/api/pull-requests/${freshPr()}/messages?limit=5`, { headers: { Authorization: await bearer({ sub: freshSubject(), scope: "read" }) } }, envWith());
    expect(response.status).toBe(409);
    expect(await response.json()).toEqual({ ok: false, error: { code: "history_disabled", message: expect.stringContaining("HISTORY_RETENTION_DAYS") } });
  });
});
