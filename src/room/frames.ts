/**
 * The frames a room sends: finished Engine.IO messages for the chat namespace,
 * encoded once and sent as they are to every link.
 */
import { encodeMessage } from "../protocol/engineio.js";
import { encodeAck, encodeEvent } from "../protocol/socketio.js";
import { CHAT_NAMESPACE } from "../events.js";

export function eventFrame(event: string, payload: unknown): string {
  return encodeMessage(encodeEvent(CHAT_NAMESPACE, event, payload));
}

export function ackFrame(ackId: number, payload: unknown): string {
  return encodeMessage(encodeAck(CHAT_NAMESPACE, ackId, [payload]));
}
