/**
 * Who a connection (or an API caller) is, when AUTH_SECRET turns identity on: an HS256
 * JWT whose `sub` is the username, whose optional `prs` lists the pull requests it may
 * use, and whose optional `scope` says what it may do (SCOPE_GRANTS). Sockets present it
 * in the CONNECT auth payload (`io(url, { auth: { token } })`), the HTTP API as
 * `Authorization: Bearer`. Token times get CLOCK_SKEW_SECONDS of leeway.
 */
import { verify } from "hono/jwt";
import { z } from "zod";
import { lazySchema } from "../util/lazy-schema.js";
import type { Config } from "./config.js";
import { PullRequestId, Username } from "./events.js";

/**
 * The words a token's space-separated `scope` may carry, and what each grants: `chat` the
 * sockets (join, speak), `publish`, `read` and `moderate` (deleting anyone's message) the
 * HTTP API's operations. A token without a
 * `scope` claim is a user's chat token: its scope is `chat`. Any other word makes the token
 * invalid, so a typo is an error, not a token that silently grants less. Adding a word
 * is one line here (scripts/token.mjs keeps a copy of the words, checked by a test).
 */
const SCOPE_GRANTS = {
  chat: ["chat"],
  publish: ["publish", "read"],
  read: ["read"],
  moderate: ["moderate", "read"],
} as const satisfies Record<string, readonly string[]>;

export type ScopeWord = keyof typeof SCOPE_GRANTS;
/** What a scope word can grant: a socket (`chat`) or an HTTP API operation. */
export type Grant = (typeof SCOPE_GRANTS)[ScopeWord][number];

/** The known scope words, in the order SCOPE_GRANTS lists them. */
export const SCOPE_WORDS = Object.keys(SCOPE_GRANTS) as ScopeWord[];

/** Whether `word` is a known scope word: an own key, so `constructor` or `__proto__` are not. */
export function isScopeWord(word: string): word is ScopeWord {
  return Object.hasOwn(SCOPE_GRANTS, word);
}

/** Whether any of the identity's scope words grants `grant`. */
export function grants(identity: Pick<Identity, "scopes">, grant: Grant): boolean {
  for (const word of identity.scopes) {
    // `word` is a ScopeWord (checked when the token was verified), never a client's raw key.
    if ((SCOPE_GRANTS[word] as readonly Grant[]).includes(grant)) return true;
  }
  return false;
}

export interface Identity {
  username: string;
  /** Canonical ids of the pull requests this connection may join; undefined: any. */
  pullRequests?: ReadonlySet<string>;
  /** The token's `exp`, in ms since the epoch: the connection ends then. */
  expiresAt: number;
  /** The `scope` claim's words; `chat` alone for a token without the claim. */
  scopes: ReadonlySet<ScopeWord>;
}

export const AuthErrorCode = z.enum(["auth_required", "token_invalid", "token_expired", "token_scope"]);
export type AuthErrorCode = z.infer<typeof AuthErrorCode>;

/** What verifying a socket's CONNECT auth gives: an identity, or the refusal with its code. */
export type IdentityResult = { ok: true; identity: Identity } | { ok: false; code: AuthErrorCode; message: string };
/** What verifying a token gives: as IdentityResult, but a token alone is never refused for its scope (token_scope). */
export type TokenResult = { ok: true; identity: Identity } | { ok: false; code: "token_invalid" | "token_expired"; message: string };

/**
 * Most pull requests a token's `prs` may list. The direct path keeps the identity in the
 * socket's attachment (16 KiB at most, with the session's own state): 100 ids of 20 digits
 * fit with room to spare; 1000 did not, and a CONNECT with them failed outside any handler.
 */
export const MAX_TOKEN_PULL_REQUESTS = 100;

/** The `scope` claim: space-separated words, every one of them known (SCOPE_GRANTS). Built on first use, as events.ts's. */
const ScopeClaim = lazySchema(() =>
  z
    .string()
    .max(1000)
    .transform((scope, ctx) => {
      const words = scope.split(" ").filter(Boolean);
      const unknown = words.find((word) => !isScopeWord(word));
      if (unknown !== undefined) {
        ctx.issues.push({ code: "custom", input: scope, message: `unknown word ${JSON.stringify(unknown)} (known: ${SCOPE_WORDS.join(", ")})` });
        return z.NEVER;
      }
      return new Set(words as ScopeWord[]);
    }),
);

/** The scopes of a token without a `scope` claim: a user's token, for the chat. */
const CHAT_ONLY: ReadonlySet<ScopeWord> = new Set(["chat"]);

const Claims = lazySchema(() =>
  z.object({
    sub: Username,
    exp: z.number({ error: "exp is required" }).finite(),
    nbf: z.number().finite().optional(),
    iat: z.number().finite().optional(),
    prs: z
      .array(PullRequestId)
      .max(MAX_TOKEN_PULL_REQUESTS, { error: `lists more than ${MAX_TOKEN_PULL_REQUESTS} pull requests; a token may list at most ${MAX_TOKEN_PULL_REQUESTS}` })
      .optional(),
    scope: ScopeClaim.optional(),
  }),
);

type TokenSettings = Pick<Config, "AUTH_ISSUER" | "AUTH_AUDIENCE" | "CLOCK_SKEW_SECONDS">;

/** An Identity as plain data: what an attachment or a hand-over carries. */
export interface StoredIdentity {
  username: string;
  pullRequests?: string[];
  expiresAt: number;
  scopes: string[];
}

export function storeIdentity({ username, pullRequests, expiresAt, scopes }: Identity): StoredIdentity {
  return { username, pullRequests: pullRequests && [...pullRequests], expiresAt, scopes: [...scopes] };
}

export function loadIdentity({ username, pullRequests, expiresAt, scopes }: StoredIdentity): Identity {
  return { username, pullRequests: pullRequests && new Set(pullRequests), expiresAt, scopes: new Set(scopes.filter(isScopeWord)) };
}

/** Whether the token lets this connection (or caller) use room `key`: a token without `prs` may use any. */
export function allowsRoom(identity: Identity | undefined, key: string): boolean {
  return !identity?.pullRequests || identity.pullRequests.has(key);
}

/**
 * Who a CONNECT is: with AUTH_SECRET set, its token's identity or the refusal to send back
 * (CONNECT_ERROR with the code in `data`); without, nobody in particular.
 */
export async function identityAtConnect(
  auth: Record<string, unknown>,
  config: TokenSettings & Pick<Config, "AUTH_SECRET">,
): Promise<{ ok: true; identity: Identity | undefined } | { ok: false; error: { message: string; data: { code: AuthErrorCode } } }> {
  if (config.AUTH_SECRET === undefined) return { ok: true, identity: undefined };
  const verified = await verifyIdentity(auth, config.AUTH_SECRET, config);
  if (!verified.ok) return { ok: false, error: { message: verified.message, data: { code: verified.code } } };
  return verified;
}

/** Verifies a socket's CONNECT auth payload: a valid token whose scope grants the chat. */
export async function verifyIdentity(auth: Record<string, unknown>, secret: string, settings: TokenSettings): Promise<IdentityResult> {
  const token = auth.token;
  if (typeof token !== "string" || token.length === 0) {
    return { ok: false, code: "auth_required", message: "a token is required: io(url, { auth: { token } })" };
  }
  const verified = await verifyToken(token, secret, settings);
  // An HTTP API token (`scope: "read"`) must not join rooms or speak: sockets need `chat`.
  if (verified.ok && !grants(verified.identity, "chat")) {
    const scope = [...verified.identity.scopes].join(" ");
    return {
      ok: false,
      code: "token_scope",
      message: `this token's scope ${JSON.stringify(scope)} lacks chat: a socket needs a token whose scope includes chat, or one without a scope claim`,
    };
  }
  return verified;
}

/** Verifies a token: signature (HS256 only), issuer, audience, claims, then times with leeway. */
export async function verifyToken(token: string, secret: string, settings: TokenSettings): Promise<TokenResult> {
  if (token.length > 8192) return { ok: false, code: "token_invalid", message: "token too long" };
  let payload: unknown;
  try {
    // The algorithm is pinned: a token that names another (or "none") fails here. Times are
    // checked below, with leeway for an issuer whose clock is a little ahead or behind.
    payload = await verify(token, secret, {
      alg: "HS256",
      iss: settings.AUTH_ISSUER,
      aud: settings.AUTH_AUDIENCE,
      exp: false,
      nbf: false,
      iat: false,
    });
  } catch (error) {
    // Never the error's message: hono puts the whole token in it.
    const name = error instanceof Error ? error.name : "";
    return { ok: false, code: "token_invalid", message: `token rejected (${name || "invalid"})` };
  }
  const claims = Claims.safeParse(payload);
  if (!claims.success) {
    const issue = claims.error.issues[0]!;
    return { ok: false, code: "token_invalid", message: `token claims: ${issue.path.join(".")}: ${issue.message}` };
  }
  const { sub, prs, exp, nbf, iat, scope } = claims.data;
  const now = Date.now() / 1000;
  const skew = settings.CLOCK_SKEW_SECONDS;
  if (exp + skew <= now) return { ok: false, code: "token_expired", message: "token expired" };
  if (nbf !== undefined && nbf - skew > now) return { ok: false, code: "token_invalid", message: "token not valid yet (nbf)" };
  if (iat !== undefined && iat - skew > now) return { ok: false, code: "token_invalid", message: "token issued in the future (iat)" };
  return {
    ok: true,
    identity: {
      username: sub,
      pullRequests: prs ? new Set(prs) : undefined,
      expiresAt: (exp + skew) * 1000,
      scopes: scope ?? CHAT_ONLY,
    },
  };
}
