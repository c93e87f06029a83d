/**
 * Token scopes and limits inside workerd: what a socket's CONNECT and the HTTP API make of a
 * token's `scope` and `prs`. End to end on both socket paths: test/e2e/token-scope.test.ts.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
// The app first: it extends zod with .openapi() before events.ts's schemas are made.
import app from "../../src/index.js";
import {
  AuthErrorCode,
  grants,
  identityAtConnect,
  isScopeWord,
  loadIdentity,
  MAX_TOKEN_PULL_REQUESTS,
  SCOPE_WORDS,
  storeIdentity,
  verifyToken,
} from "../../src/chat/identity.js";
import { signToken } from "../shared/token.js";

const SECRET = "identity-test-secret-that-is-long-enough";
const config = { AUTH_SECRET: SECRET, AUTH_ISSUER: undefined, AUTH_AUDIENCE: undefined, CLOCK_SKEW_SECONDS: 60 };

const token = (claims: Record<string, unknown>) => signToken(SECRET, { sub: "johndoe", ...claims });
const atConnect = async (claims: Record<string, unknown>) => identityAtConnect({ token: await token(claims) }, config);

/** Words that are keys of every plain object: a lookup by them must not find a grant, nor throw. */
const PROTOTYPE_WORDS = ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"];

describe("scope on a socket's CONNECT", () => {
  it.each([["read"], ["publish"], ["read publish"], [""]])("refuses scope %j, which lacks chat, as token_scope saying what it has", async (scope) => {
    const verified = await atConnect({ scope });
    expect(verified).toEqual({ ok: false, error: { message: expect.any(String), data: { code: "token_scope" } } });
    const { message } = (verified as Extract<typeof verified, { ok: false }>).error;
    expect(message).toContain(`scope ${JSON.stringify(scope)}`);
    expect(message).toContain("lacks chat");
  });

  it("accepts a token without a scope claim, as a chat token", async () => {
    const verified = await atConnect({});
    expect(verified.ok).toBe(true);
    expect(verified.ok && verified.identity).toMatchObject({ username: "johndoe", scopes: new Set(["chat"]) });
  });

  it.each([["chat"], ["chat publish"], ["read chat"], ["chat chat"]])("accepts scope %j", async (scope) => {
    const verified = await atConnect({ scope });
    expect(verified.ok).toBe(true);
    expect(verified.ok && grants(verified.identity!, "chat")).toBe(true);
  });

  it.each([...PROTOTYPE_WORDS, "admin", "Chat", "chat,publish", "moderator"])("refuses the unknown word %j as token_invalid, naming it", async (word) => {
    for (const scope of [word, `chat ${word}`]) {
      const verified = await atConnect({ scope });
      expect(verified, scope).toEqual({ ok: false, error: { message: expect.stringContaining(`unknown word ${JSON.stringify(word)}`), data: { code: "token_invalid" } } });
    }
  });

  it("adds token_scope to the codes a CONNECT may be refused with", () => {
    expect(AuthErrorCode.options).toContain("token_scope");
  });
});

describe("scope words", () => {
  it("are chat, publish, read and moderate, and only their own keys", () => {
    expect(SCOPE_WORDS).toEqual(["chat", "publish", "read", "moderate"]);
    for (const word of PROTOTYPE_WORDS) expect(isScopeWord(word), word).toBe(false);
  });

  it("grant what they say: publish implies read, chat grants no API operation, no word grants chat but chat", async () => {
    const granted = async (scope: string) => {
      const verified = await verifyToken(await token({ scope }), SECRET, config);
      if (!verified.ok) throw new Error(verified.message);
      return (["chat", "publish", "read", "moderate"] as const).filter((grant) => grants(verified.identity, grant));
    };
    expect(await granted("chat")).toEqual(["chat"]);
    expect(await granted("publish")).toEqual(["publish", "read"]);
    expect(await granted("read")).toEqual(["read"]);
    expect(await granted("moderate")).toEqual(["read", "moderate"]);
    expect(await granted("chat publish")).toEqual(["chat", "publish", "read"]);
    expect(await granted("")).toEqual([]);
  });

  it("a stored identity loads with its known words only", () => {
    const stored = { ...storeIdentity({ username: "a", expiresAt: 1, scopes: new Set(["chat"]) }), scopes: ["chat", "constructor"] };
    expect(loadIdentity(stored).scopes).toEqual(new Set(["chat"]));
  });
});

describe("prs", () => {
  const ids = (count: number) => Array.from({ length: count }, (_, i) => String(10n ** 19n + BigInt(i)));

  it(`takes up to ${MAX_TOKEN_PULL_REQUESTS} pull requests`, async () => {
    expect(MAX_TOKEN_PULL_REQUESTS).toBe(100);
    const verified = await atConnect({ prs: ids(100) });
    expect(verified.ok && verified.identity?.pullRequests?.size).toBe(100);
  });

  it("refuses 101 as token_invalid, saying why", async () => {
    expect(await atConnect({ prs: ids(101) })).toEqual({
      ok: false,
      error: { message: "token claims: prs: lists more than 100 pull requests; a token may list at most 100", data: { code: "token_invalid" } },
    });
  });
});

describe("scope in the HTTP API", () => {
  const envWith = () => ({ ...env, AUTH_SECRET: SECRET }) as unknown as Env;
  const publish = async (claims: Record<string, unknown>) =>
    app.request(
      `/api/pull-requests/${7000 + Math.floor(Math.random() * 1000)}/messages`,
      { method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${await token({ sub: `bot-${Math.random().toString(36).slice(2, 8)}`, ...claims })}` }, body: JSON.stringify({ message: "hi" }) },
      envWith(),
    );

  it.each([...PROTOTYPE_WORDS, "admin", "Publish"])("answers an unknown word %j with 401 token_invalid naming it, never 500", async (word) => {
    for (const scope of [word, `publish ${word}`]) {
      const response = await publish({ scope });
      expect(response.status, scope).toBe(401);
      expect(response.headers.get("WWW-Authenticate"), scope).toContain('error="invalid_token"');
      expect(await response.json(), scope).toEqual({ ok: false, error: { code: "token_invalid", message: expect.stringContaining(`unknown word ${JSON.stringify(word)}`) } });
    }
  });

  it("a chat scope (or none) grants no API operation; chat publish publishes", async () => {
    expect((await publish({ scope: "chat" })).status).toBe(403);
    expect((await publish({})).status).toBe(403);
    expect((await publish({ scope: "chat publish" })).status).toBe(201);
  });
});
