import { describe, expect, it } from "vitest";
import {
  decodeSocketPacket,
  encodeAck,
  encodeEvent,
  encodeSocketPacket,
  reconstructBinary,
  SocketPacketType as T,
} from "../../src/protocol/socketio.js";

const ok = (value: unknown) => ({ ok: true, value });

describe("Socket.IO v5 decode, frame by frame", () => {
  it.each([
    ["0", { type: T.CONNECT, nsp: "/" }],
    ["0/admin,", { type: T.CONNECT, nsp: "/admin" }],
    ['0{"token":"123"}', { type: T.CONNECT, nsp: "/", data: { token: "123" } }],
    ['0/admin,{"token":"123"}', { type: T.CONNECT, nsp: "/admin", data: { token: "123" } }],
    ["1", { type: T.DISCONNECT, nsp: "/" }],
    ["1/admin,", { type: T.DISCONNECT, nsp: "/admin" }],
    ['2["hello",1]', { type: T.EVENT, nsp: "/", data: ["hello", 1] }],
    ['2/admin,456["project:delete",123]', { type: T.EVENT, nsp: "/admin", id: 456, data: ["project:delete", 123] }],
    ["3/admin,456[]", { type: T.ACK, nsp: "/admin", id: 456, data: [] }],
    ['313["ok"]', { type: T.ACK, nsp: "/", id: 13, data: ["ok"] }],
    ['4{"message":"Not authorized"}', { type: T.CONNECT_ERROR, nsp: "/", data: { message: "Not authorized" } }],
    [
      '51-["hello",{"_placeholder":true,"num":0}]',
      { type: T.BINARY_EVENT, nsp: "/", attachments: 1, data: ["hello", { _placeholder: true, num: 0 }] },
    ],
    [
      '61-/admin,456[{"_placeholder":true,"num":0}]',
      { type: T.BINARY_ACK, nsp: "/admin", id: 456, attachments: 1, data: [{ _placeholder: true, num: 0 }] },
    ],
  ])("decodes %s", (frame, packet) => {
    expect(decodeSocketPacket(frame)).toEqual(ok(packet));
  });

  it.each([
    ["", "unknown packet type"],
    ["7", "unknown packet type"],
    ["a", "unknown packet type"],
    ["2[", "invalid JSON"],
    ['2{"a":1}', "EVENT payload"],
    ["2[]", "EVENT payload"],
    ["2[1]", "EVENT payload"],
    ['2["connect"]', "reserved event"],
    ['2["disconnect"]', "reserved event"],
    ["0[]", "CONNECT payload"],
    ['0"x"', "CONNECT payload"],
    ["1{}", "DISCONNECT takes no payload"],
    ["3[]", "ACK without an id"],
    ['31{"a":1}', "ACK payload"],
    ['5-["x"]', "illegal attachments"],
    ['5a-["x"]', "illegal attachments"],
    ['5["x"]', "illegal attachments"],
    ['511-["x"]', "too many attachments"],
    ['299999999999999999999["x"]', "ack id out of range"],
  ])("refuses %j (%s)", (frame, reason) => {
    const decoded = decodeSocketPacket(frame);
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.reason).toContain(reason);
  });
});

describe("Socket.IO v5 encode", () => {
  it("encodes events and acks on the main and other namespaces", () => {
    expect(encodeEvent("/", "hello", { a: 1 })).toBe('2["hello",{"a":1}]');
    expect(encodeEvent("/admin", "x")).toBe('2/admin,["x"]');
    expect(encodeAck("/", 7, [{ ok: true }])).toBe('37[{"ok":true}]');
    expect(encodeSocketPacket({ type: T.CONNECT, nsp: "/", data: { sid: "s" } }).header).toBe('0{"sid":"s"}');
    expect(encodeSocketPacket({ type: T.CONNECT_ERROR, nsp: "/x", data: { message: "Invalid namespace" } }).header).toBe(
      '4/x,{"message":"Invalid namespace"}',
    );
    expect(encodeSocketPacket({ type: T.DISCONNECT, nsp: "/x" }).header).toBe("1/x,");
    expect(encodeSocketPacket({ type: T.EVENT, nsp: "/", id: 3, data: ["q"] }).header).toBe('23["q"]');
  });

  it("moves binary into attachments with placeholders", () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const { header, attachments } = encodeSocketPacket({ type: T.EVENT, nsp: "/", data: ["bin", { file: bytes }, 2] });
    expect(header).toBe('51-["bin",{"file":{"_placeholder":true,"num":0}},2]');
    expect(attachments.map((b) => [...new Uint8Array(b)])).toEqual([[1, 2, 3]]);

    const ack = encodeSocketPacket({ type: T.ACK, nsp: "/", id: 4, data: [bytes.buffer, bytes.buffer] });
    expect(ack.header).toBe('62-4[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
  });

  it("reconstructs what it deconstructs", () => {
    const buffer = new Uint8Array([9, 8]).buffer;
    const { header, attachments } = encodeSocketPacket({ type: T.EVENT, nsp: "/", id: 1, data: ["m", [buffer]] });
    const decoded = decodeSocketPacket(header);
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    const rebuilt = reconstructBinary(decoded.value, attachments);
    expect(rebuilt).toEqual(ok({ type: T.EVENT, nsp: "/", id: 1, data: ["m", [buffer]] }));
  });

  it("refuses placeholders that point nowhere", () => {
    const decoded = decodeSocketPacket('51-["m",{"_placeholder":true,"num":1}]');
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(reconstructBinary(decoded.value, [new ArrayBuffer(1)]).ok).toBe(false);
  });
});
