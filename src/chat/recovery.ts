/**
 * Whether a connection that comes back with its pid is taken back (connection state
 * recovery), decided once for both paths: the gateway (its ConnectionRecord) and the direct
 * path (the room's connections table). Recovery is socket.io's: only a connection that ended
 * at the transport can come back, within RECOVERY_WINDOW_MS of when it ended, as the same
 * token subject, into rooms its new token and URL still allow.
 */
import type { DisconnectReason } from "../session/types.js";
import { allowsRoom, grants, type Identity } from "./identity.js";
import { roomName } from "./events.js";
import { parseOffset, type Positions } from "./offset.js";

/**
 * Endings a client may recover from: the transport closed or broke, the peer went silent,
 * it was cut as a slow reader, or the server went away. Not a namespace disconnect (the client
 * or the server meant it, token expiry included), nor a protocol violation.
 */
const RECOVERABLE: ReadonlySet<DisconnectReason> = new Set(["transport close", "transport error", "ping timeout", "slow reader"]);

export function isRecoverable(reason: DisconnectReason): boolean {
  return RECOVERABLE.has(reason);
}

/** What storage says about the connection the pid names. */
export interface Candidate {
  /** When the server saw the connection end; null while it has not (a half-dead connection). */
  departedAt: number | null;
  /** The token subject it was opened with (null: identity off). */
  subject: string | null;
  /** Room keys it was in. */
  rooms: readonly string[];
}

/** Who is asking now. */
export interface Claimant {
  identity: Identity | undefined;
  /** The pull request the new connection was opened for (`?pullRequestId=`), if any. */
  only: string | undefined;
  /** The offset the client sent back (socket.io-client's last offset), if any. */
  offset?: unknown;
}

export type RecoveryDecision = { ok: true; positions: Positions } | { ok: false; why: string };

/**
 * Whether `claimant` takes `candidate` back at `now`, and from where in each room: the
 * window, the token's subject, scope and `prs`, the URL's pull request, and the offset.
 * Both paths decide with this: the gateway in its ConnectionRecord, the direct path in the room.
 */
export function decideRecovery(candidate: Candidate, claimant: Claimant, now: number, config: Timing): RecoveryDecision {
  const why = recoveryRefusal(candidate, claimant, now, config);
  if (why !== undefined) return { ok: false, why };
  const positions = claimant.offset === undefined ? new Map<string, number>() : parseOffset(claimant.offset);
  return positions ? { ok: true, positions } : { ok: false, why: "malformed offset" };
}

/**
 * How long a claim on a connection the server has not seen end waits for that connection to
 * say how it ended (see ConnectionRecord.claim): about two round trips of a slow mobile
 * network. A half-dead connection's successor pays it once, after a silence as long as a
 * dead peer goes unnoticed (deadPeerMs).
 */
export const TAKEOVER_GRACE_MS = 1000;

/** The window, and how long a dead client can go unnoticed on the claimant's path (deadPeerMs). */
export interface Timing {
  RECOVERY_WINDOW_MS: number;
  silenceMs: number;
}

/** Why `claimant` may not take `candidate` back at `now`; undefined when it may. */
function recoveryRefusal(candidate: Candidate, claimant: Claimant, now: number, config: Timing): string | undefined {
  const window = config.RECOVERY_WINDOW_MS;
  if (window === 0) return "recovery is off";
  if (candidate.departedAt !== null) {
    if (now - candidate.departedAt > window) return "away longer than the recovery window";
  } else if (window < config.silenceMs) {
    // The old connection has not been seen to end: it may have been silent for as long as a
    // dead peer goes unnoticed, longer than the window, and nothing tells how long. (With the
    // defaults the window is longer, so such a connection is always within it.)
    return "the previous connection has not ended yet, and may have been away longer than the recovery window";
  }
  if (candidate.subject !== (claimant.identity?.username ?? null)) return "another token subject";
  if (claimant.identity && !grants(claimant.identity, "chat")) return "the token does not grant chat";
  for (const key of candidate.rooms) {
    if (!allowsRoom(claimant.identity, key)) return `the token no longer allows ${roomName(key)}`;
    if (claimant.only !== undefined && key !== claimant.only) return `this connection was opened for ${roomName(claimant.only)}, not ${roomName(key)}`;
  }
  return undefined;
}
