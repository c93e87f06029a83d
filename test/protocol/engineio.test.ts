import { describe, expect, it } from "vitest";
import {
  decodeEnginePacket,
  decodePayload,
  encodeEnginePacket,
  encodeMessage,
  encodeOpen,
  encodePayload,
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

describe("Engine.IO v4 polling payloads", () => {
  const bytes = (...values: number[]) => new Uint8Array(values).buffer;

  it("joins frames with the record separator, binary as b + base64", () => {
    expect(encodePayload(["4hello"])).toBe("4hello");
    expect(encodePayload(["4test1", "4test2", "2"])).toBe("4test1\x1e4test2\x1e2");
    expect(encodePayload(["4hello", bytes(1, 2, 3, 4)])).toBe("4hello\x1ebAQIDBA==");
    expect(encodePayload([bytes()])).toBe("b");
    expect(encodePayload([])).toBe("");
  });

  it("encodes large binary frames without blowing the stack", () => {
    const big = new Uint8Array(200_000).map((_, i) => i % 251);
    const payload = encodePayload([big.buffer]);
    const decoded = decodePayload(payload);
    expect(decoded.ok && [...new Uint8Array(decoded.value[0] as ArrayBuffer)]).toEqual([...big]);
  });

  it("splits a payload frame by frame", () => {
    expect(decodePayload("4hello")).toEqual({ ok: true, value: ["4hello"] });
    expect(decodePayload("3\x1e4a\x1e1")).toEqual({ ok: true, value: ["3", "4a", "1"] });
    const mixed = decodePayload("4hello\x1ebAQIDBA==");
    expect(mixed.ok).toBe(true);
    if (!mixed.ok) return;
    expect(mixed.value[0]).toBe("4hello");
    expect([...new Uint8Array(mixed.value[1] as ArrayBuffer)]).toEqual([1, 2, 3, 4]);
  });

  it.each([
    ["", "empty payload"],
    ["4a\x1e", "empty last packet"],
    ["abc", "unknown type"],
    ["4a\x1e9", "unknown type later"],
    ["b!!!", "not base64"],
    ["bAQ", "unpadded base64"],
    ["bAQ ID", "white space in base64"],
  ])("refuses %j (%s)", (payload) => {
    expect(decodePayload(payload).ok).toBe(false);
  });
});
