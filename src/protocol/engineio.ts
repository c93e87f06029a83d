/**
 * Engine.IO v4 packets over the WebSocket transport: pure encode/decode, no I/O.
 *
 * On a WebSocket each frame carries exactly one packet. A text frame is the packet
 * type digit followed by its data; a binary frame is a `message` packet whose data
 * is the raw bytes (no type byte in v4).
 */

export const EIO_VERSION = "4";

export const EnginePacketType = {
  open: "0",
  close: "1",
  ping: "2",
  pong: "3",
  message: "4",
  upgrade: "5",
  noop: "6",
} as const;

export type EnginePacketName = keyof typeof EnginePacketType;

export type EnginePacket =
  | { type: Exclude<EnginePacketName, "message">; data?: string }
  | { type: "message"; data: string | ArrayBuffer };

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; reason: string };

const NAME_BY_DIGIT = Object.fromEntries(
  Object.entries(EnginePacketType).map(([name, digit]) => [digit, name]),
) as Record<string, EnginePacketName>;

export interface OpenHandshake {
  sid: string;
  upgrades: string[];
  pingInterval: number;
  pingTimeout: number;
  maxPayload: number;
}

/** Encodes a packet into one WebSocket frame. */
export function encodeEnginePacket(packet: EnginePacket): string | ArrayBuffer {
  if (packet.type === "message" && typeof packet.data !== "string") return packet.data;
  return EnginePacketType[packet.type] + (packet.data ?? "");
}

export function encodeOpen(handshake: OpenHandshake): string {
  return EnginePacketType.open + JSON.stringify(handshake);
}

/** Wraps an already-encoded Socket.IO packet in an Engine.IO message frame. */
export function encodeMessage(data: string): string {
  return EnginePacketType.message + data;
}

/** Decodes one WebSocket frame. Binary frames are always `message` packets. */
export function decodeEnginePacket(frame: string | ArrayBuffer): DecodeResult<EnginePacket> {
  if (typeof frame !== "string") return { ok: true, value: { type: "message", data: frame } };
  if (frame.length === 0) return { ok: false, reason: "empty frame" };
  const type = NAME_BY_DIGIT[frame[0]!];
  if (type === undefined) return { ok: false, reason: `unknown packet type ${JSON.stringify(frame[0])}` };
  const data = frame.slice(1);
  if (type === "message") return { ok: true, value: { type, data } };
  return { ok: true, value: data.length > 0 ? { type, data } : { type } };
}

const utf8 = new TextEncoder();

/**
 * Whether a frame exceeds `limit` bytes, measuring UTF-8 only when the character
 * count alone cannot decide (a UTF-16 code unit is 1 to 3 UTF-8 bytes).
 */
export function exceedsPayload(frame: string | ArrayBuffer, limit: number): boolean {
  if (typeof frame !== "string") return frame.byteLength > limit;
  if (frame.length > limit) return true;
  if (frame.length * 3 <= limit) return false;
  return utf8.encode(frame).byteLength > limit;
}
