/**
 * Socket.IO v5 packets: pure encode/decode, no I/O.
 *
 * Wire form: `<type>[<attachments>-][<nsp>,][<ackId>][<json>]`, where binary
 * packets (types 5 and 6) are followed by `attachments` binary frames that replace
 * `{"_placeholder":true,"num":n}` markers in the JSON.
 */
import type { DecodeResult } from "./engineio.js";

export const SocketPacketType = {
  CONNECT: 0,
  DISCONNECT: 1,
  EVENT: 2,
  ACK: 3,
  CONNECT_ERROR: 4,
  BINARY_EVENT: 5,
  BINARY_ACK: 6,
} as const;

export type SocketPacketTypeId = (typeof SocketPacketType)[keyof typeof SocketPacketType];

export interface SocketPacket {
  type: SocketPacketTypeId;
  nsp: string;
  /** Ack id, on EVENT (asks for an ack) and ACK (answers one). */
  id?: number;
  data?: unknown;
  /** Binary frames that follow the header (BINARY_EVENT / BINARY_ACK only). */
  attachments?: number;
}

/** Event names a peer may not emit: the client library reserves them for itself. */
export const RESERVED_EVENTS: ReadonlySet<string> = new Set([
  "connect",
  "connect_error",
  "disconnect",
  "disconnecting",
  "newListener",
  "removeListener",
]);

/** As socket.io-parser: more attachments than this in one packet is refused. */
export const MAX_ATTACHMENTS = 10;

export type Binary = ArrayBuffer | ArrayBufferView;

export function isBinary(value: unknown): value is Binary {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

/**
 * Whether `value` holds binary anywhere (depth-bounded: our own outbound data is shallow).
 * Looks where JSON.stringify would: through an object's toJSON() (a Date, a class), once.
 */
export function hasBinary(value: unknown, depth = 0, viaToJSON = false): boolean {
  if (depth > 32 || value === null || typeof value !== "object") return false;
  if (isBinary(value)) return true;
  if (Array.isArray(value)) return value.some((item) => hasBinary(item, depth + 1));
  if (!viaToJSON && hasToJSON(value)) return hasBinary(value.toJSON(), depth + 1, true);
  return Object.values(value).some((item) => hasBinary(item, depth + 1));
}

function hasToJSON(value: object): value is { toJSON(): unknown } {
  return typeof (value as { toJSON?: unknown }).toJSON === "function";
}

/**
 * Encodes a packet. Data holding binary becomes a BINARY_EVENT / BINARY_ACK header
 * plus one ArrayBuffer per attachment, to be sent as frames in that order.
 */
export function encodeSocketPacket(packet: SocketPacket): { header: string; attachments: ArrayBuffer[] } {
  let { type, data } = packet;
  const attachments: ArrayBuffer[] = [];
  if ((type === SocketPacketType.EVENT || type === SocketPacketType.ACK) && hasBinary(data)) {
    data = deconstruct(data, attachments);
    type = type === SocketPacketType.EVENT ? SocketPacketType.BINARY_EVENT : SocketPacketType.BINARY_ACK;
  }
  let header = String(type);
  if (type === SocketPacketType.BINARY_EVENT || type === SocketPacketType.BINARY_ACK) header += `${attachments.length}-`;
  if (packet.nsp !== "/") header += `${packet.nsp},`;
  if (packet.id !== undefined) header += packet.id;
  if (data !== undefined) header += JSON.stringify(data);
  return { header, attachments };
}

/** Encodes an event that carries no binary: the common, cheap path. */
export function encodeEvent(nsp: string, event: string, ...args: unknown[]): string {
  return encodeSocketPacket({ type: SocketPacketType.EVENT, nsp, data: [event, ...args] }).header;
}

/** Encodes an ACK that carries no binary. */
export function encodeAck(nsp: string, id: number, args: unknown[]): string {
  return encodeSocketPacket({ type: SocketPacketType.ACK, nsp, id, data: args }).header;
}

/** Decodes a packet header (the text frame). Binary packets still need their attachments. */
export function decodeSocketPacket(text: string): DecodeResult<SocketPacket> {
  const typeDigit = text.charCodeAt(0) - 48;
  if (!(typeDigit >= 0 && typeDigit <= 6)) return fail(`unknown packet type ${JSON.stringify(text[0] ?? "")}`);
  const packet: SocketPacket = { type: typeDigit as SocketPacketTypeId, nsp: "/" };
  let i = 1;

  if (packet.type === SocketPacketType.BINARY_EVENT || packet.type === SocketPacketType.BINARY_ACK) {
    const dash = text.indexOf("-", i);
    const count = dash === -1 ? "" : text.slice(i, dash);
    if (!/^\d{1,2}$/.test(count)) return fail("illegal attachments");
    packet.attachments = Number(count);
    // As socket.io-parser: a binary packet carries at least one attachment.
    if (packet.attachments < 1) return fail("illegal attachments");
    if (packet.attachments > MAX_ATTACHMENTS) return fail(`too many attachments (max ${MAX_ATTACHMENTS})`);
    i = dash + 1;
  }

  if (text[i] === "/") {
    const comma = text.indexOf(",", i);
    const end = comma === -1 ? text.length : comma;
    packet.nsp = text.slice(i, end);
    i = comma === -1 ? end : end + 1;
  }

  let digits = i;
  while (digits < text.length && text.charCodeAt(digits) >= 48 && text.charCodeAt(digits) <= 57) digits++;
  if (digits > i) {
    const id = Number(text.slice(i, digits));
    if (!Number.isSafeInteger(id)) return fail("ack id out of range");
    packet.id = id;
    i = digits;
  }

  if (i < text.length) {
    // JSON.parse skips leading whitespace, but socket.io-parser reads it as ack id digits
    // (Number(" ") == 0): `2 ["x"]` is an event asking for ack 0 there. Read it neither way.
    if (/[ \t\n\r]/.test(text[i]!)) return fail("invalid JSON payload");
    try {
      packet.data = JSON.parse(text.slice(i));
    } catch {
      return fail("invalid JSON payload");
    }
  }
  const invalid = checkPayload(packet);
  return invalid ? fail(invalid) : { ok: true, value: packet };
}

function checkPayload(packet: SocketPacket): string | undefined {
  const { type, data, id } = packet;
  switch (type) {
    case SocketPacketType.CONNECT:
      return data === undefined || isPlainObject(data) ? undefined : "CONNECT payload must be an object";
    case SocketPacketType.DISCONNECT:
      return data === undefined ? undefined : "DISCONNECT takes no payload";
    case SocketPacketType.CONNECT_ERROR:
      return typeof data === "string" || isPlainObject(data) ? undefined : "invalid CONNECT_ERROR payload";
    case SocketPacketType.EVENT:
    case SocketPacketType.BINARY_EVENT:
      if (!Array.isArray(data) || typeof data[0] !== "string") return "EVENT payload must be [name, ...args]";
      return RESERVED_EVENTS.has(data[0]) ? `reserved event name ${JSON.stringify(data[0])}` : undefined;
    case SocketPacketType.ACK:
    case SocketPacketType.BINARY_ACK:
      if (id === undefined) return "ACK without an id";
      return Array.isArray(data) ? undefined : "ACK payload must be an array";
  }
}

/**
 * Replaces placeholders with their attachments. Fails on a placeholder that points
 * nowhere, so a peer cannot smuggle holes into event arguments.
 */
export function reconstructBinary(packet: SocketPacket, buffers: ArrayBuffer[]): DecodeResult<SocketPacket> {
  try {
    const data = fill(packet.data, buffers, 0);
    const type = packet.type === SocketPacketType.BINARY_EVENT ? SocketPacketType.EVENT : SocketPacketType.ACK;
    const { attachments: _, ...rest } = packet;
    return { ok: true, value: { ...rest, type, data } };
  } catch (error) {
    return fail(error instanceof Error ? error.message : "invalid placeholder");
  }
}

const MAX_BINARY_DEPTH = 32;

function fill(value: unknown, buffers: ArrayBuffer[], depth: number): unknown {
  if (value === null || typeof value !== "object") return value;
  if (depth > MAX_BINARY_DEPTH) throw new Error("binary payload nested too deeply");
  if (Array.isArray(value)) return value.map((item) => fill(item, buffers, depth + 1));
  const record = value as Record<string, unknown>;
  if (record._placeholder === true) {
    const num = record.num;
    if (typeof num !== "number" || !Number.isInteger(num) || num < 0 || num >= buffers.length) {
      throw new Error("illegal attachment placeholder");
    }
    return buffers[num];
  }
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(record)) setOwn(out, key, fill(item, buffers, depth + 1));
  return out;
}

function deconstruct(value: unknown, buffers: ArrayBuffer[], depth = 0, viaToJSON = false): unknown {
  if (isBinary(value)) {
    buffers.push(toArrayBuffer(value));
    return { _placeholder: true, num: buffers.length - 1 };
  }
  if (value === null || typeof value !== "object" || depth > MAX_BINARY_DEPTH) return value;
  if (Array.isArray(value)) return value.map((item) => deconstruct(item, buffers, depth + 1));
  // Encode what JSON.stringify would (a Date's string, a class's toJSON()), as socket.io-parser 4.2.7 does.
  if (!viaToJSON && hasToJSON(value)) return deconstruct(value.toJSON(), buffers, depth + 1, true);
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) setOwn(out, key, deconstruct(item, buffers, depth + 1));
  return out;
}

/** Sets an own property, even one named "__proto__" (plain assignment would swap the prototype). */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function toArrayBuffer(value: Binary): ArrayBuffer {
  if (value instanceof ArrayBuffer) return value;
  const copy = new Uint8Array(value.byteLength);
  copy.set(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  return copy.buffer;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}
