/**
 * Engine.IO v4 packets: pure encode/decode, no I/O.
 *
 * On a WebSocket each frame carries exactly one packet. A text frame is the packet
 * type digit followed by its data; a binary frame is a `message` packet whose data
 * is the raw bytes (no type byte in v4). HTTP long-polling carries several packets
 * in one body (a payload): the same text forms joined by the record separator \x1e,
 * binary messages as `b` + base64.
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

/** Separates the packets of a polling payload (ASCII record separator). */
export const RECORD_SEPARATOR = "\x1e";

/**
 * Joins frames (in their WebSocket form) into one polling payload, as engine.io-parser's
 * encodePayload does: text frames as they are, binary frames as `b` + base64.
 */
export function encodePayload(frames: Array<string | ArrayBuffer>): string {
  let payload = "";
  for (let i = 0; i < frames.length; i++) {
    const frame = frames[i]!;
    if (i > 0) payload += RECORD_SEPARATOR;
    payload += typeof frame === "string" ? frame : "b" + toBase64(frame);
  }
  return payload;
}

/**
 * Splits a polling payload into frames in their WebSocket form (`b` + base64 becomes
 * an ArrayBuffer). All or nothing: a payload with one bad packet is refused whole,
 * where engine.io-parser returns the packets before it and then an error packet (on
 * which the reference server closes the session anyway). Packet types are checked
 * here; what a packet says is for decodeEnginePacket.
 */
export function decodePayload(text: string): DecodeResult<Array<string | ArrayBuffer>> {
  const frames: Array<string | ArrayBuffer> = [];
  for (const part of text.split(RECORD_SEPARATOR)) {
    if (part.length === 0) return { ok: false, reason: "empty packet in payload" };
    if (part[0] === "b") {
      const bytes = fromBase64(part.slice(1));
      if (!bytes) return { ok: false, reason: "bad base64 in payload" };
      frames.push(bytes);
    } else if (NAME_BY_DIGIT[part[0]!] === undefined) {
      return { ok: false, reason: `unknown packet type ${JSON.stringify(part[0])} in payload` };
    } else frames.push(part);
  }
  return { ok: true, value: frames };
}

function toBase64(buffer: ArrayBuffer): string {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  // In slices: String.fromCharCode takes its arguments on the stack.
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64 (padded, no white space), or undefined. */
function fromBase64(text: string): ArrayBuffer | undefined {
  if (!BASE64.test(text)) return undefined;
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}
