/**
 * The frames a room sends: finished Engine.IO messages for the chat namespace,
 * encoded once and sent as they are to every member.
 */
import { CHAT_NAMESPACE, ServerEvent, type PrRoomMessage, type ServerEventName } from "./events.js";
import { encodeMessage } from "../protocol/engineio.js";
import { encodeAck, encodeEvent } from "../protocol/socketio.js";
import { formatOffset } from "./offset.js";

export function eventFrame(event: ServerEventName, payload: unknown): string {
  return encodeMessage(encodeEvent(CHAT_NAMESPACE, event, payload));
}

/**
 * A `pr-room-message`. With recovery on it carries the room's offset as its last
 * argument, which socket.io-client keeps and sends back when it reconnects.
 */
export function messageFrame(roomKey: string, payload: PrRoomMessage, withOffset: boolean): string {
  if (!withOffset) return eventFrame(ServerEvent.message, payload);
  return encodeMessage(encodeEvent(CHAT_NAMESPACE, ServerEvent.message, payload, formatOffset(new Map([[roomKey, payload.seq]]))));
}

export function ackFrame(ackId: number, payload: unknown): string {
  return encodeMessage(encodeAck(CHAT_NAMESPACE, ackId, [payload]));
}
