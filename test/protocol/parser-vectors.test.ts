/**
 * Replays the test vectors of socket.io-parser and engine.io-parser against our codec,
 * so the two cannot drift (issue #12, item 8).
 *
 * The vectors (test/protocol/vectors/<package>/vectors.ts) are every call upstream's own
 * test files make into the real parser, with what it answered; see the README there and
 * scripts/extract-parser-vectors.mjs. Each recorded call becomes one test here:
 *
 * - a check against src/protocol/ (same wire text, same bytes, same packet, or a refusal
 *   where upstream refuses);
 * - or a documented difference (STRICTER): upstream accepts, we refuse on purpose, and
 *   the test pins that we do;
 * - or `it.skip` with the reason (NOT_APPLICABLE) when the call is outside a pure
 *   WebSocket codec (Blob, decoder state, WebTransport streams, reviver option…).
 *
 * Nothing is dropped silently: a recorded call this file cannot classify fails.
 */
import { describe, expect, it } from "vitest";
import { decodeEnginePacket, encodeEnginePacket, EIO_VERSION, type EnginePacket } from "../../src/protocol/engineio.js";
import {
  decodeSocketPacket,
  encodeSocketPacket,
  reconstructBinary,
  SocketPacketType,
  type SocketPacket,
} from "../../src/protocol/socketio.js";
import engineVectors from "./vectors/engine.io-parser/vectors.js";
import { binaryKind, containsBinary, engineWireForm, isBinaryValue, revive, toArrayBuffer, toHex, wireForm } from "./vectors/revive.js";
import socketVectors from "./vectors/socket.io-parser/vectors.js";
import { NOT_APPLICABLE, payloads, STRICTER, ZERO_ATTACHMENT_PACKETS } from "./vectors/differences.js";
import type { EngineIoOp, Snap, SocketIoOp, VectorSuite, VectorTest } from "./vectors/types.js";

type Check = { name: string; run: () => void; skip?: undefined } | { name: string; skip: string };

const show = (value: unknown) => {
  const text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(wireForm(value));
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
};

// ------------------------------------------------------------------ socket.io-parser

function stricterSocketDecode(packet: unknown): string | undefined {
  const p = packet as { type?: number; data?: unknown } | undefined;
  if ((p?.type === SocketPacketType.EVENT || p?.type === SocketPacketType.BINARY_EVENT) && Array.isArray(p.data) && typeof p.data[0] === "number") {
    return STRICTER.numericEventName;
  }
  return undefined;
}

/** Our decode of a complete text packet must match upstream's (or be a documented refusal). */
function expectSameDecode(text: string, upstream: unknown): void {
  const ours = decodeSocketPacket(text);
  const stricter = stricterSocketDecode(upstream);
  if (stricter) {
    expect(ours.ok, stricter).toBe(false);
    return;
  }
  if (!ours.ok) throw new Error(`we refuse ${JSON.stringify(text)} (${ours.reason}); socket.io-parser decodes it`);
  expect(wireForm(ours.value)).toEqual(wireForm(upstream));
}

function planSocketIo(test: VectorTest): Check[] {
  const ops = test.ops as SocketIoOp[];
  if (ops.length === 0 && test.title.at(-1) === "exposes types") {
    return [
      {
        name: "packet type numbers",
        run: () => expect(SocketPacketType).toEqual(socketVectors.meta.PacketType),
      },
    ];
  }
  const checks: Check[] = [];
  type DecoderState = { skip?: string; pending?: { header: string; attachments: number; buffers: ArrayBuffer[] } };
  const decoders = new Map<number, DecoderState>();
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    switch (op.op) {
      case "encode": {
        const name = `encode ${show(revive(op.packet))}`;
        if (containsBinary(op.packet, ["Blob"])) {
          checks.push({ name, skip: NOT_APPLICABLE.blob });
          break;
        }
        checks.push({
          name: op.throws ? `${name} throws` : `${name} → ${show(op.out)}`,
          run: () => {
            const packet = revive(op.packet) as SocketPacket;
            const before = op.throws ? undefined : wireForm(packet);
            const encode = () => encodeSocketPacket({ ...packet, nsp: packet.nsp ?? "/" });
            if (op.throws) {
              expect(encode).toThrow();
              return;
            }
            const [header, ...buffers] = revive(op.out!) as [string, ...Array<ArrayBuffer | ArrayBufferView>];
            const ours = encode();
            expect(ours.header).toBe(header);
            expect(ours.attachments.map(toHex)).toEqual(buffers.map(toHex));
            expect(wireForm(packet), "the input packet is left as it was").toEqual(before);
          },
        });
        break;
      }
      case "decoder": {
        const opts = op.opts === undefined ? undefined : (revive(op.opts) as unknown);
        const state: DecoderState = {};
        if (typeof opts === "function" || (opts as { reviver?: unknown } | undefined)?.reviver) state.skip = NOT_APPLICABLE.reviver;
        else if ((opts as { maxAttachments?: unknown } | undefined)?.maxAttachments !== undefined) state.skip = NOT_APPLICABLE.maxAttachments;
        else if (opts !== undefined) throw new Error(`unknown Decoder options ${show(op.opts)}: classify them`);
        decoders.set(op.decoder, state);
        if (state.skip) checks.push({ name: `new Decoder(${show(op.opts)})`, skip: state.skip });
        break;
      }
      case "destroy": {
        const state = decoders.get(op.decoder)!;
        state.pending = undefined;
        checks.push({ name: "destroy()", skip: NOT_APPLICABLE.destroy });
        break;
      }
      case "decoded":
        break; // checked with the `add` that produced it
      case "isPacketValid": {
        const packet = revive(op.packet) as SocketPacket;
        checks.push({
          name: `isPacketValid(${show(packet)}) is ${op.result}: we ${op.result && !stricterSocketDecode(packet) ? "decode" : "refuse"} its encoding`,
          run: () => {
            const { header } = encodeSocketPacket({ ...packet, nsp: packet.nsp ?? "/" });
            const stricter = op.result ? stricterSocketDecode(packet) : undefined;
            expect(decodeSocketPacket(header).ok, stricter).toBe(stricter ? false : op.result);
          },
        });
        break;
      }
      case "add": {
        const state = decoders.get(op.decoder)!;
        const next = ops[i + 1];
        const decoded = next?.op === "decoded" && next.decoder === op.decoder ? next.packet : undefined;
        const chunk = revive(op.chunk);
        const outcome = op.throws ? `refused (${op.throws})` : decoded !== undefined ? `→ ${show(revive(decoded))}` : "(attachments due)";
        const stricter = decoded !== undefined ? stricterSocketDecode(revive(decoded)) : undefined;
        const name = `add(${show(chunk)}) ${outcome}${stricter ? " [stricter: we refuse it]" : ""}`;
        if (state.skip) {
          checks.push({ name, skip: state.skip });
          break;
        }
        if (typeof chunk === "string") {
          if (state.pending) {
            checks.push({ name, skip: NOT_APPLICABLE.textWhileAttachmentsDue });
            break;
          }
          if (op.throws) {
            checks.push({ name, run: () => expect(decodeSocketPacket(chunk).ok).toBe(false) });
          } else if (decoded !== undefined) {
            checks.push({ name, run: () => expectSameDecode(chunk, revive(decoded)) });
          } else {
            const attachments = Number(/^[56](\d+)-/.exec(chunk)?.[1]);
            state.pending = { header: chunk, attachments, buffers: [] };
            checks.push({
              name,
              run: () => {
                const ours = decodeSocketPacket(chunk);
                if (!ours.ok) throw new Error(`we refuse ${JSON.stringify(chunk)} (${ours.reason}); socket.io-parser waits for its attachments`);
                expect(ours.value.attachments).toBe(attachments);
              },
            });
          }
          break;
        }
        if (!isBinaryValue(chunk)) {
          checks.push({ name, skip: chunk instanceof Blob ? NOT_APPLICABLE.blob : NOT_APPLICABLE.notAFrame });
          break;
        }
        const pending = state.pending;
        if (!pending) {
          checks.push({ name, skip: NOT_APPLICABLE.binaryWithoutHeader });
          break;
        }
        const buffers = [...pending.buffers, toArrayBuffer(chunk)];
        pending.buffers = buffers;
        if (op.throws || decoded !== undefined) state.pending = undefined;
        checks.push({
          name,
          run: () => {
            const header = decodeSocketPacket(pending.header);
            if (!header.ok) throw new Error(`we refuse the header ${JSON.stringify(pending.header)} (${header.reason})`);
            if (op.throws === undefined && decoded === undefined) {
              expect(buffers.length).toBeLessThan(header.value.attachments!);
              return;
            }
            expect(buffers.length).toBe(header.value.attachments);
            const rebuilt = reconstructBinary(header.value, buffers);
            if (op.throws) expect(rebuilt.ok).toBe(false);
            else expect(rebuilt.ok && wireForm(rebuilt.value)).toEqual(wireForm(revive(decoded!)));
          },
        });
        break;
      }
    }
  }
  return checks;
}

// ------------------------------------------------------------------ engine.io-parser

/** Upstream packet → our WebSocket frame, or why there is none. */
function toFrame(packet: { type: string; data?: unknown }): string | ArrayBuffer | { skip: string } {
  if (packet.data instanceof Blob) return { skip: NOT_APPLICABLE.blob };
  if (isBinaryValue(packet.data)) return toArrayBuffer(packet.data);
  return encodeEnginePacket(packet as EnginePacket) as string;
}

function planEngineIo(test: VectorTest): Check[] {
  const checks: Check[] = [];
  for (const op of test.ops as EngineIoOp[]) {
    switch (op.op) {
      case "stream":
        checks.push({ name: op.kind, skip: NOT_APPLICABLE.stream });
        break;
      case "encodePacket": {
        const packet = revive(op.packet) as { type: string; data?: unknown };
        const name = `encodePacket(${show(packet)}, supportsBinary=${op.supportsBinary}) → ${show(revive(op.out!))}`;
        const kind = binaryKind((op.packet as { data?: Snap }).data ?? null);
        if (kind === "Blob") checks.push({ name, skip: NOT_APPLICABLE.blob });
        else if (kind && !op.supportsBinary) checks.push({ name, skip: NOT_APPLICABLE.base64Packet });
        else if (kind && kind !== "ArrayBuffer") checks.push({ name, skip: NOT_APPLICABLE.view });
        else {
          checks.push({
            name,
            run: () => {
              const ours = encodeEnginePacket(packet as EnginePacket);
              if (kind) expect(ours, "a binary frame is the data itself").toBe(packet.data);
              else expect(ours).toBe(revive(op.out!));
            },
          });
        }
        break;
      }
      case "decodePacket": {
        const data = revive(op.data);
        const out = revive(op.out) as { type: string; data?: unknown };
        const name = `decodePacket(${show(data)}) → ${show(out)}`;
        const kind = binaryKind(op.data);
        if (kind === "Blob") checks.push({ name, skip: NOT_APPLICABLE.blob });
        else if (kind && kind !== "ArrayBuffer") checks.push({ name, skip: NOT_APPLICABLE.nodeBuffer });
        else if (typeof data === "string" && data.startsWith("b") && out.type !== "error") {
          checks.push({ name: `${name} [stricter]`, run: () => expect(decodeEnginePacket(data).ok, STRICTER.base64TextFrame).toBe(false) });
        } else {
          checks.push({
            name,
            run: () => {
              const ours = decodeEnginePacket(data as string | ArrayBuffer);
              if (out.type === "error") expect(ours.ok).toBe(false);
              else expect(ours.ok && engineWireForm(ours.value)).toEqual(engineWireForm(out));
            },
          });
        }
        break;
      }
      case "encodePayload": {
        const packets = revive(op.packets) as Array<{ type: string; data?: unknown }>;
        const name = `encodePayload(${show(packets)}) → ${JSON.stringify(op.out)}`;
        const frames = packets.map(toFrame);
        const skip = frames.find((frame): frame is { skip: string } => typeof frame === "object" && "skip" in frame);
        if (skip) checks.push({ name, skip: skip.skip });
        else checks.push({ name, run: () => expect(payloads.encodePayload(frames as Array<string | ArrayBuffer>)).toBe(op.out) });
        break;
      }
      case "decodePayload": {
        const out = revive(op.out) as Array<{ type: string; data?: unknown }>;
        const name = `decodePayload(${JSON.stringify(op.payload)}) → ${show(out)}`;
        if (out.some((packet) => packet.data instanceof Blob)) checks.push({ name, skip: NOT_APPLICABLE.blob });
        else {
          checks.push({
            name,
            run: () => {
              const ours = payloads.decodePayload(op.payload);
              // Upstream returns the packets before the bad one and then an error packet; the
              // polling transport closes the session on it, so we refuse the whole payload.
              if (out.at(-1)?.type === "error") {
                expect(ours.ok).toBe(false);
                return;
              }
              if (!ours.ok) throw new Error(`we refuse the payload (${ours.reason})`);
              const packets = ours.value.map((frame) => {
                const decoded = decodeEnginePacket(frame);
                if (!decoded.ok) throw new Error(`payload frame ${show(frame)}: ${decoded.reason}`);
                return engineWireForm(decoded.value);
              });
              expect(packets).toEqual(out.map(engineWireForm));
            },
          });
        }
        break;
      }
    }
  }
  return checks;
}

// ------------------------------------------------------------------ running

function register(suite: VectorSuite, plan: (test: VectorTest) => Check[]) {
  describe(`${suite.package}@${suite.npmVersion} vectors (${suite.repository} @ ${suite.commit.slice(0, 8)})`, () => {
    for (const test of suite.tests) {
      describe(`[${test.run}] ${test.file} › ${test.title.slice(1).join(" › ")}`, () => {
        const checks = plan(test);
        if (checks.length === 0) {
          it("is classified", () => {
            throw new Error("this upstream test made no parser call this file knows: replay it or give a reason");
          });
        }
        for (const check of checks) {
          if (check.skip !== undefined) it.skip(`${check.name} — n/a: ${check.skip}`, () => {});
          else it(check.name, check.run);
        }
      });
    }
  });
}

register(socketVectors, planSocketIo);
register(engineVectors, planEngineIo);

describe("vector metadata", () => {
  it("speaks the same Engine.IO protocol revision", () => {
    expect(engineVectors.meta.protocol).toBe(Number(EIO_VERSION));
  });
});

describe("local vectors: binary packets without attachments", () => {
  it.each(ZERO_ATTACHMENT_PACKETS)("refuses %j", (frame) => {
    const decoded = decodeSocketPacket(frame);
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.reason).toContain("illegal attachments");
  });
});
