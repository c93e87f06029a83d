/**
 * The socket under a RoomLink: how it is opened (and retried), and how it is closed. A
 * link's close code is what the room reads: `leave` ends the membership, `gone` keeps it
 * recoverable.
 */
import { LinkClose, type LinkRefusal } from "../chat/link.js";

/**
 * Opens the WebSocket to the room, resuming after `resumeFrom` when given ("" = since
 * the member joined). Resolves with the room's refusal (final); rejects when the room
 * could not be reached (retried if `retryable`).
 */
export type LinkOpener = (resumeFrom?: string) => Promise<OpenedLink | { refused: LinkRefusal }>;

/** The gateway's end of a link the room took, and the room's last seq then. */
export interface OpenedLink {
  ws: WebSocket;
  /** The room's latest seq when it took the link (a fresh join starts after it). */
  head?: number;
}

/** Thrown by an opener for a failure no retry can fix (a bug on our side). */
export class FinalLinkError extends Error {}

export interface LinkTiming {
  /** Attempts to reach a room before giving up. */
  attempts: number;
  /** Retry n waits a random time in [0, min(cap, base × 2^n)) ms: full jitter, so links do not retry in step. */
  backoffBaseMs: number;
  backoffCapMs: number;
  /** A command the room has not answered within this is answered `room_unavailable`, and the link replaced. */
  commandTimeoutMs: number;
}

export const LINK_TIMING: LinkTiming = { attempts: 4, backoffBaseMs: 100, backoffCapMs: 2_000, commandTimeoutMs: 10_000 };

/**
 * Closes a link end with `code`: `leave` ends the membership, `gone` keeps it recoverable (a
 * replaced or abandoned link). An end never accepted must be accepted first (workerd refuses otherwise).
 */
export function closeQuietly(ws: WebSocket, accept: boolean, code: (typeof LinkClose)["leave" | "gone"]): void {
  try {
    if (accept) ws.accept();
    ws.close(code, code === LinkClose.leave ? "leave" : "gone");
  } catch {
    // Already closed.
  }
}
