/**
 * Who a connection (or an API caller) is, when AUTH_SECRET turns identity on: an HS256
 * JWT whose `sub` is the username and whose optional `prs` lists the pull requests it
 * may use. Sockets present it in the CONNECT auth payload (`io(url, { auth: { token } })`),
 * the HTTP API as `Authorization: Bearer`. Token times get CLOCK_SKEW_SECONDS of leeway.
 */
import { verify } from "hono/jwt";
import { z } from "zod";
import type { Config } from "../config.js";
import { PullRequestId, Username } from "../events.js";

export interface Identity {
  username: string;
  /** Canonical ids of the pull requests this connection may join; undefined: any. */
  pullRequests?: ReadonlySet<string>;
  /** The token's `exp`, in ms since the epoch: the connection ends then. */
  expiresAt: number;
  /** The `scope` claim's words (the HTTP API's `publish`, `read`). */
  scopes: ReadonlySet<string>;
}

export const AuthErrorCode = z.enum(["auth_required", "token_invalid", "token_expired"]);
export type AuthErrorCode = z.infer<typeof AuthErrorCode>;

export type IdentityResult = { ok: true; identity: Identity } | { ok: false; code: AuthErrorCode; message: string };

const Claims = z.object({
  sub: Username,
  exp: z.number({ error: "exp is required" }).finite(),
  nbf: z.number().finite().optional(),
  iat: z.number().finite().optional(),
  prs: z.array(PullRequestId).max(1000).optional(),
  scope: z.string().max(1000).optional(),
});

type TokenSettings = Pick<Config, "AUTH_ISSUER" | "AUTH_AUDIENCE" | "CLOCK_SKEW_SECONDS">;

/** Verifies a socket's CONNECT auth payload. */
export async function verifyIdentity(auth: Record<string, unknown>, secret: string, settings: TokenSettings): Promise<IdentityResult> {
  const token = auth.token;
  if (typeof token !== "string" || token.length === 0) {
    return { ok: false, code: "auth_required", message: "a token is required: io(url, { auth: { token } })" };
  }
  return verifyToken(token, secret, settings);
}

/** Verifies a token: signature (HS256 only), issuer, audience, claims, then times with leeway. */
export async function verifyToken(token: string, secret: string, settings: TokenSettings): Promise<IdentityResult> {
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
      scopes: new Set(scope?.split(" ").filter(Boolean) ?? []),
    },
  };
}
