/**
 * Turns recorded vector data (types.ts `Snap`) back into values, and values into a
 * comparable "wire form" (binary as hex, no undefined keys, no prototypes).
 */
import type { Snap } from "./types.js";

type Tagged = { [key: string]: Snap };

/** The tagged object if `snap` carries `tag` (see types.ts), else undefined. */
const tagged = (snap: Snap | undefined, tag: string): Tagged | undefined =>
  snap !== null && typeof snap === "object" && !Array.isArray(snap) && tag in snap ? snap : undefined;
const isTagged = (snap: Snap | undefined, tag: string): boolean => tagged(snap, tag) !== undefined;

export function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

export function toHex(value: ArrayBuffer | ArrayBufferView): string {
  const bytes = value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The bytes of a binary value as a fresh ArrayBuffer: what a WebSocket frame would carry. */
export function toArrayBuffer(value: ArrayBuffer | ArrayBufferView): ArrayBuffer {
  return fromHex(toHex(value)).buffer;
}

export const isBinaryValue = (value: unknown): value is ArrayBuffer | ArrayBufferView =>
  value instanceof ArrayBuffer || ArrayBuffer.isView(value);

/** The `$binary` kind of a recorded value ("ArrayBuffer", "Buffer", "Uint8Array", "Blob"…), if binary. */
export function binaryKind(snap: Snap): string | undefined {
  const binary = tagged(snap, "$binary");
  return binary ? String(binary.$binary) : undefined;
}

/** Whether a recorded value holds, anywhere, binary of one of these kinds. */
export function containsBinary(snap: Snap, kinds?: string[]): boolean {
  if (snap === null || typeof snap !== "object") return false;
  const kind = binaryKind(snap);
  if (kind !== undefined) return kinds === undefined || kinds.includes(kind);
  return Object.values(snap).some((item) => containsBinary(item, kinds));
}

const TYPED_ARRAYS: Record<string, new (buffer: ArrayBuffer, offset: number, length: number) => ArrayBufferView> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView: DataView as never,
};

/**
 * Rebuilds a recorded value. A Node `Buffer` comes back as a Uint8Array over the same
 * bytes (workerd has no Buffer without nodejs_compat).
 */
export function revive(snap: Snap): unknown {
  const byPath = new Map<string, unknown>();
  const walk = (value: Snap, path: string): unknown => {
    if (value === null || typeof value !== "object") return value;
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      byPath.set(path, out);
      value.forEach((item, i) => out.push(walk(item, `${path}/${i}`)));
      return out;
    }
    const t: Tagged = value;
    if (isTagged(t, "$undefined")) return undefined;
    if (isTagged(t, "$number")) return Number(t.$number);
    if (isTagged(t, "$date")) return new Date(String(t.$date));
    if (isTagged(t, "$error")) return new Error(String(t.$error));
    if (isTagged(t, "$function")) return Object.defineProperty(() => undefined, "name", { value: t.$function });
    if (isTagged(t, "$binary")) {
      const kind = String(t.$binary);
      const bytes = fromHex(String(t.hex));
      if (kind === "Blob") return new Blob([bytes], { type: String(t.type ?? "") });
      if (kind === "ArrayBuffer") return bytes.buffer;
      if (kind === "Buffer") return bytes;
      const View = TYPED_ARRAYS[kind];
      if (!View) throw new Error(`unknown binary kind ${kind}`);
      const offset = Number(t.byteOffset ?? 0);
      const whole = new Uint8Array(Number(t.bufferLength ?? bytes.length));
      whole.set(bytes, offset);
      const perElement = (View as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
      return new View(whole.buffer, offset, bytes.length / perElement);
    }
    // Cycles: filled in by swapRefs once every object on the path exists.
    if (isTagged(t, "$ref")) return undefined;
    const own = (source: Snap, target: Record<string, unknown>) => {
      for (const [key, item] of Object.entries(source as Tagged)) {
        Object.defineProperty(target, key, { value: walk(item, `${path}/${key}`), enumerable: true, writable: true, configurable: true });
      }
      return target;
    };
    if (isTagged(t, "$toJSON")) {
      const object: Record<string, unknown> = {};
      byPath.set(path, object);
      own(t.own ?? {}, object);
      const json = revive(t.$toJSON!);
      Object.defineProperty(object, "toJSON", { value: () => json, enumerable: false });
      return object;
    }
    if (isTagged(t, "$nullPrototype")) {
      const object = Object.create(null) as Record<string, unknown>;
      byPath.set(path, object);
      return own(t.$nullPrototype!, object);
    }
    const object: Record<string, unknown> = {};
    byPath.set(path, object);
    if (isTagged(t, "$class")) return own(t.own ?? {}, object);
    if (isTagged(t, "$object")) return own(t.$object!, object);
    return own(t, object);
  };
  const root = walk(snap, "");
  return JSON.stringify(snap).includes('"$ref"') ? swapRefs(root, snap, byPath) : root;
}

function swapRefs(value: unknown, snap: Snap, byPath: Map<string, unknown>): unknown {
  const ref = tagged(snap, "$ref");
  if (ref) return byPath.get(String(ref.$ref));
  if (value === null || typeof value !== "object" || snap === null || typeof snap !== "object") return value;
  if (isTagged(snap, "$binary") || isTagged(snap, "$toJSON")) return value;
  const source = (tagged(snap, "$nullPrototype")?.$nullPrototype ??
    tagged(snap, "$object")?.$object ??
    tagged(snap, "$class")?.own ??
    snap) as Tagged;
  for (const key of Object.keys(source)) {
    (value as Record<string, unknown>)[key] = swapRefs((value as Record<string, unknown>)[key], source[key]!, byPath);
  }
  return value;
}

/**
 * A value in comparable form: binary as `{ bytes: hex }` whatever its kind, undefined
 * properties dropped, prototypes ignored. Two packets that put the same JSON and the
 * same bytes on the wire have equal wire forms.
 */
export function wireForm(value: unknown, seen: Set<unknown> = new Set()): unknown {
  if (isBinaryValue(value)) return { bytes: toHex(value) };
  if (value === null || typeof value !== "object") return value;
  if (seen.has(value)) return "[Circular]";
  seen.add(value);
  const out: unknown = Array.isArray(value)
    ? value.map((item) => wireForm(item, seen))
    : Object.fromEntries(
        Object.entries(value)
          .filter(([, item]) => item !== undefined)
          .map(([key, item]) => [key, wireForm(item, seen)]),
      );
  seen.delete(value);
  return out;
}

/** wireForm of an Engine.IO packet: engine.io-parser's `{ type: "message" }` (from "4") is our `{ type: "message", data: "" }`. */
export function engineWireForm(packet: unknown): unknown {
  const p = packet as { type: string; data?: unknown };
  return wireForm(p.type === "message" && p.data === undefined ? { ...p, data: "" } : p);
}
