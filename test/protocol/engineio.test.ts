import { describe, expect, it } from "vitest";
import {
  decodeEnginePacket,
  encodeEnginePacket,
  encodeMessage,
  encodeOpen,
  exceedsPayload,
} from "../../src/protocol/engineio.js";

describe("Engine.IO v4 frames", () => {
  it("encodes the open packet as the reference server does", () => {
    expect(encodeOpen({ sid: "abc", upgrades: [], pingInterval: 300, pingTimeout: 200, maxPayload: 1000000 })).toBe(
      '0{"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}',
    );
  });

  it.each([
    ["1", { type: "close" }],
    ["2", { type: "ping" }],
    ["3", { type: "pong" }],
    ["2probe", { type: "ping", data: "probe" }],
    ["4hello", { type: "message", data: "hello" }],
    ["4", { type: "message", data: "" }],
    ["5", { type: "upgrade" }],
    ["6", { type: "noop" }],
  ])("decodes %j", (frame, packet) => {
    expect(decodeEnginePacket(frame)).toEqual({ ok: true, value: packet });
  });

  it("treats a binary frame as a message with raw bytes (no type byte in v4)", () => {
    const bytes = new Uint8Array([1, 2, 3]).buffer;
    const decoded = decodeEnginePacket(bytes);
    expect(decoded).toEqual({ ok: true, value: { type: "message", data: bytes } });
    expect(encodeEnginePacket({ type: "message", data: bytes })).toBe(bytes);
  });

  it.each(["", "7", "x", "{", "9message"])("refuses %j", (frame) => {
    expect(decodeEnginePacket(frame).ok).toBe(false);
  });

  it("round-trips text packets", () => {
    expect(encodeEnginePacket({ type: "pong", data: "probe" })).toBe("3probe");
    expect(encodeEnginePacket({ type: "ping" })).toBe("2");
    expect(encodeMessage('2["x"]')).toBe('42["x"]');
  });

  it("measures payloads in UTF-8 bytes", () => {
    expect(exceedsPayload("a".repeat(10), 10)).toBe(false);
    expect(exceedsPayload("a".repeat(11), 10)).toBe(true);
    expect(exceedsPayload("é".repeat(5), 10)).toBe(false); // 10 bytes
    expect(exceedsPayload("é".repeat(6), 10)).toBe(true); // 6 chars, 12 bytes
    expect(exceedsPayload("😀".repeat(3), 10)).toBe(true); // 6 UTF-16 units, 12 bytes
    expect(exceedsPayload(new Uint8Array(11).buffer, 10)).toBe(true);
    expect(exceedsPayload(new Uint8Array(10).buffer, 10)).toBe(false);
  });
});
