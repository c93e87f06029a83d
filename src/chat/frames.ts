/**
 * The frames a room sends: finished Engine.IO messages for the chat namespace,
 * encoded once and sent as they are to every member.
 */
import { CHAT_NAMESPACE, type ServerEventName } from "./events.js";
import { encodeMessage } from "../protocol/engineio.js";
import { encodeAck, encodeEvent } from "../protocol/socketio.js";
import { formatOffset } from "./offset.js";

export function eventFrame(event: ServerEventName, payload: unknown): string {
  return encodeMessage(encodeEvent(CHAT_NAMESPACE, event, payload));
}

/**
 * A room event: a `pr-room-message`, or a change to one (edited, deleted, reactions). With
 * recovery on it carries the room's offset (its seq) as its last argument, which
 * socket.io-client keeps and sends back when it reconnects.
 */
export function roomEventFrame(roomKey: string, event: ServerEventName, payload: unknown, seq: number, withOffset: boolean): string {
  if (!withOffset) return eventFrame(event, payload);
  return encodeMessage(encodeEvent(CHAT_NAMESPACE, event, payload, formatOffset(new Map([[roomKey, seq]]))));
}

export function ackFrame(ackId: number, payload: unknown): string {
  return encodeMessage(encodeAck(CHAT_NAMESPACE, ackId, [payload]));
}
