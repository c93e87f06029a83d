/** Signing identity tokens as a backend would: the same in workerd and in Node. */
import { sign } from "hono/jwt";

/** Now in seconds since the epoch, as JWT claims count time. */
export const now = () => Math.floor(Date.now() / 1000);

/**
 * A JWT with `claims`, signed with `secret` (HS256 unless `alg` says otherwise), expiring in
 * ten minutes unless `claims` sets `exp` (`exp: undefined` leaves it out).
 */
export function signToken(secret: string, claims: Record<string, unknown> = {}, alg: "HS256" | "HS512" = "HS256"): Promise<string> {
  return sign({ exp: now() + 600, ...claims }, secret, alg);
}
