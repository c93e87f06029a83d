/**
 * Offsets for connection state recovery, pure. socket.io-client keeps the last string
 * argument of the last event it received and sends it back in CONNECT. Ours says where
 * the connection is in each of its rooms: "123:45" (room 123, seq 45), or
 * "123:45,124:7" for a connection in two rooms.
 *
 * Why a vector: frames from several rooms share one client connection, in the order
 * the gateway forwarded them, and the client receives a prefix of that order. If every
 * room event's frame (a message, or a change to one) carries every room's position at the
 * moment it was forwarded, the last one the client got says exactly what it got from each
 * room.
 */

import { eventFramePrefix } from "../protocol/sniff.js";
import { ServerEvent } from "./events.js";

/** Room key → last seq. */
export type Positions = Map<string, number>;

const PAIR = /^(\d{1,20}):(\d{1,15})$/;
/** Rooms one offset may name: more than any connection may join. */
const MAX_PAIRS = 1000;

export function formatOffset(positions: ReadonlyMap<string, number>): string {
  let text = "";
  for (const [key, seq] of positions) text += `${text ? "," : ""}${key}:${seq}`;
  return text;
}

/** Reads an offset a client sent back; undefined when it is not one of ours. */
export function parseOffset(text: unknown): Positions | undefined {
  if (typeof text !== "string" || text.length === 0 || text.length > MAX_PAIRS * 37) return undefined;
  const positions: Positions = new Map();
  const pairs = text.split(",");
  if (pairs.length > MAX_PAIRS) return undefined;
  for (const pair of pairs) {
    const match = PAIR.exec(pair);
    if (!match) return undefined;
    const seq = Number(match[2]);
    if (!Number.isSafeInteger(seq)) return undefined;
    positions.set(match[1]!.replace(/^0+(?=\d)/, ""), seq);
  }
  return positions;
}

/** How a room's message frame starts: an EVENT (`4` `2`) on the chat namespace named pr-room-message. */
export const MESSAGE_FRAME_PREFIX = eventFramePrefix(ServerEvent.message);

/**
 * How every room event's frame starts: the events that carry an offset are pr-room-message
 * and its changes, pr-room-message-edited, -deleted and -reactions, which all begin so.
 */
const ROOM_EVENT_PREFIX = MESSAGE_FRAME_PREFIX.slice(0, -2);

/** Where the offset argument of a room event's frame starts (its opening quote), or -1. */
function offsetStart(frame: string): number {
  if (!frame.startsWith(ROOM_EVENT_PREFIX) || !frame.endsWith('"]')) return -1;
  const quote = frame.lastIndexOf('"', frame.length - 3);
  // The argument before it ends the payload object: `},"123:45"]`.
  return quote > 0 && frame.charCodeAt(quote - 1) === 44 /* , */ && frame.charCodeAt(quote - 2) === 125 /* } */ ? quote : -1;
}

/** The offset a room event's frame carries, or undefined for any other frame. */
export function offsetOf(frame: string): string | undefined {
  const start = offsetStart(frame);
  return start === -1 ? undefined : frame.slice(start + 1, -2);
}

/** The same room event frame with another offset. */
export function replaceOffset(frame: string, offset: string): string {
  const start = offsetStart(frame);
  return start === -1 ? frame : `${frame.slice(0, start + 1)}${offset}"]`;
}
