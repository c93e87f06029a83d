/**
 * A token's `scope` and `prs` end to end, on both paths: the real socket.io-client (and
 * HTTP for the API) against the Worker under `wrangler dev` with AUTH_SECRET. A token with a
 * scope must include `chat` to use a socket; unknown words make any token invalid; `prs` is
 * capped, so what the direct path keeps of it fits the socket's attachment.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signToken } from "../shared/token.js";
import { ack, client, closeAll, connected, once, send } from "../support/client.js";
import { paths } from "../support/paths.js";
import type { ServedWorker } from "../support/worker.js";
import { wranglerDev } from "../support/wrangler-dev.js";

const SECRET = "token-scope-secret-that-is-long-enough-01";

let worker: ServedWorker;
let nextPr = 1;
const freshPr = () => 5000 + nextPr++;
let nextUser = 1;
const freshUser = (name: string) => `${name}-${nextUser++}`;

beforeAll(async () => {
  worker = await wranglerDev("wrangler.toml", { vars: { AUTH_SECRET: SECRET }, freshState: true });
});
afterAll(async () => {
  closeAll();
  await worker?.close();
});

const token = (claims: Record<string, unknown>) => signToken(SECRET, claims);

/** Words that are keys of every plain object: a lookup by them must find nothing, nor throw. */
const PROTOTYPE_WORDS = ["constructor", "__proto__", "toString"];

/** The next connect_error of a client that CONNECTs with `claims` on `options`' path. */
async function refusal(claims: Record<string, unknown>, options: object): Promise<{ message: string; data: unknown }> {
  const socket = client(worker.url, { ...options, auth: { token: await token(claims) } });
  const [error] = await once(socket, "connect_error");
  expect(socket.connected).toBe(false);
  return error;
}

describe.each(paths)("on the %s path", (_path, optionsFor) => {
  it.each([["read"], ["publish"], ["read publish"], [""]])("refuses a token with scope %j, which lacks chat: token_scope", async (scope) => {
    const error = await refusal({ sub: freshUser("dashboard"), scope }, optionsFor(freshPr()));
    expect(error.data).toEqual({ code: "token_scope" });
    expect(error.message).toBe(
      `this token's scope ${JSON.stringify(scope)} lacks chat: a socket needs a token whose scope includes chat, or one without a scope claim`,
    );
  });

  it.each([["no scope claim", undefined], ["scope chat", "chat"], ["scope chat publish", "chat publish"]])(
    "a token with %s joins and speaks as before",
    async (_, scope) => {
      const pr = freshPr();
      const username = freshUser("reviewer");
      const socket = await connected(worker.url, { ...optionsFor(pr), auth: { token: await token({ sub: username, scope }) } });
      expect(await ack(socket, "join-pr-room", { pullRequestId: pr, username })).toMatchObject({ ok: true, users: [username] });
      expect(await send(socket, pr, username, "hello")).toMatchObject({ ok: true });
    },
  );

  it.each([...PROTOTYPE_WORDS, "admin", "Chat"])("refuses a token with the unknown scope word %j as token_invalid, naming it", async (word) => {
    for (const scope of [word, `chat ${word}`]) {
      const error = await refusal({ sub: freshUser("someone"), scope }, optionsFor(freshPr()));
      expect(error.data, scope).toEqual({ code: "token_invalid" });
      expect(error.message, scope).toBe(`token claims: scope: unknown word ${JSON.stringify(word)} (known: chat, publish, read, moderate)`);
    }
  });

  it("refuses a token listing 101 pull requests as token_invalid", async () => {
    const prs = longIds(101);
    const error = await refusal({ sub: freshUser("hoarder"), prs }, optionsFor(prs[0]!));
    expect(error).toMatchObject({ data: { code: "token_invalid" }, message: "token claims: prs: lists more than 100 pull requests; a token may list at most 100" });
  });

  it("a token listing 100 pull requests of 20 digits connects, joins and speaks (the direct path keeps it in the socket's attachment)", async () => {
    const prs = longIds(100, nextPr++);
    const pr = prs[99]!;
    const username = freshUser("many-rooms");
    const socket = await connected(worker.url, { ...optionsFor(pr), auth: { token: await token({ sub: username, prs }) } });
    expect(await ack(socket, "join-pr-room", { pullRequestId: pr, username })).toMatchObject({ ok: true, users: [username] });
    expect(await send(socket, pr, username, "still here")).toMatchObject({ ok: true });
  });
});

/** `count` distinct pull request ids of 20 digits (`batch` keeps tests' rooms apart). */
function longIds(count: number, batch = 0): string[] {
  return Array.from({ length: count }, (_, i) => String(10n ** 19n + BigInt(batch) * 1000n + BigInt(i)));
}

describe("the HTTP API", () => {
  const publish = async (claims: Record<string, unknown>) =>
    fetch(`${worker.url}/api/pull-requests/${freshPr()}/messages`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${await token({ sub: freshUser("bot"), ...claims })}` },
      body: JSON.stringify({ message: "hi" }),
    });

  it.each([...PROTOTYPE_WORDS, "admin"])("answers a token with the unknown scope word %j with 401 token_invalid, not 500", async (word) => {
    const response = await publish({ scope: `publish ${word}` });
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toContain('error="invalid_token"');
    expect(await response.json()).toEqual({
      ok: false,
      error: { code: "token_invalid", message: `token claims: scope: unknown word ${JSON.stringify(word)} (known: chat, publish, read, moderate)` },
    });
  });

  it("takes a chat publish token, which a socket takes too; a chat token is forbidden", async () => {
    expect((await publish({ scope: "chat publish" })).status).toBe(201);
    const forbidden = await publish({ scope: "chat" });
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ error: { code: "forbidden" } });
  });
});
