/**
 * Who a connection is, when AUTH_SECRET turns identity on: an HS256 JWT from the
 * CONNECT auth payload (`io(url, { auth: { token } })`) whose `sub` is the username
 * and whose optional `prs` lists the pull requests it may join.
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
}

export const AuthErrorCode = z.enum(["auth_required", "token_invalid", "token_expired"]);
export type AuthErrorCode = z.infer<typeof AuthErrorCode>;

export type IdentityResult = { ok: true; identity: Identity } | { ok: false; code: AuthErrorCode; message: string };

const Claims = z.object({
  sub: Username,
  exp: z.number({ error: "exp is required" }),
  prs: z.array(PullRequestId).max(1000).optional(),
});

export async function verifyIdentity(
  auth: Record<string, unknown>,
  secret: string,
  { AUTH_ISSUER, AUTH_AUDIENCE }: Pick<Config, "AUTH_ISSUER" | "AUTH_AUDIENCE">,
): Promise<IdentityResult> {
  const token = auth.token;
  if (typeof token !== "string" || token.length === 0) {
    return { ok: false, code: "auth_required", message: "a token is required: io(url, { auth: { token } })" };
  }
  if (token.length > 8192) return { ok: false, code: "token_invalid", message: "token too long" };
  let payload: unknown;
  try {
    // The algorithm is pinned: a token that names another (or "none") fails here. hono checks
    // exp/iss/aud before the signature, so a forged token may be told "expired": harmless.
    payload = await verify(token, secret, { alg: "HS256", iss: AUTH_ISSUER, aud: AUTH_AUDIENCE });
  } catch (error) {
    const name = error instanceof Error ? error.name : "";
    if (name === "JwtTokenExpired") return { ok: false, code: "token_expired", message: "token expired" };
    return { ok: false, code: "token_invalid", message: `token rejected (${name || "invalid"})` };
  }
  const claims = Claims.safeParse(payload);
  if (!claims.success) {
    const issue = claims.error.issues[0]!;
    return { ok: false, code: "token_invalid", message: `token claims: ${issue.path.join(".")}: ${issue.message}` };
  }
  const { sub, prs, exp } = claims.data;
  return { ok: true, identity: { username: sub, pullRequests: prs ? new Set(prs) : undefined, expiresAt: exp * 1000 } };
}
