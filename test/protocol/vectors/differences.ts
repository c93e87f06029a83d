/**
 * How our codec stands against socket.io-parser and engine.io-parser where it does not
 * simply agree: what does not apply to it, and where it is stricter on purpose. Shared by
 * parser-vectors.test.ts (upstream's vectors) and parsers-differential.test.ts.
 */
import * as engineio from "../../../src/protocol/engineio.js";

/** Why a recorded call does not apply to our codec. Each is shown as a skipped test. */
export const NOT_APPLICABLE = {
  blob:
    "Blob: our codec takes and yields ArrayBuffer (workerd hands WebSocket binary frames over as ArrayBuffer); Blob is a browser-side type",
  binaryWithoutHeader:
    "decoder state, not codec: a binary frame with no binary packet pending is refused by SocketLayer.message (test/worker/gateway.test.ts › 'binary where text belongs')",
  textWhileAttachmentsDue:
    "decoder state, not codec: a text frame while attachments are due is refused by SocketLayer.message (test/worker/gateway.test.ts › 'text while binary attachments are due')",
  destroy:
    "Decoder#destroy(): there is no reusable decoder object; SocketLayer drops pending attachments by closing the connection on any decode error",
  notAFrame: "a chunk that is neither text nor binary cannot come off a WebSocket; decodeSocketPacket takes a string by type",
  reviver: "Decoder option `reviver`: our codec has no JSON reviver hook (the server parses with plain JSON.parse)",
  maxAttachments:
    "Decoder option `maxAttachments`: our limit is the constant MAX_ATTACHMENTS = 10, socket.io-parser's default (checked against it in parsers-differential.test.ts)",
  view: "EnginePacket message data is string | ArrayBuffer: typed arrays and Node Buffers become ArrayBuffers before this layer (encodeSocketPacket attachments)",
  nodeBuffer: "a Node Buffer as a received frame: workerd hands binary frames over as ArrayBuffer",
  base64Packet:
    "a single `b`+base64 packet is the polling form of binary (supportsBinary=false); on a WebSocket binary is a binary frame. The payload vectors cover `b` framing",
  stream: "WebTransport length-prefixed stream framing (createPacketEncoderStream/DecoderStream): we serve WebSocket and HTTP long-polling only",
} as const;

/**
 * Inputs upstream accepts and we refuse on purpose: only malformed input reaches them
 * (socket.io-client never sends any). Each has a pinned example in
 * parsers-differential.test.ts, and the malformed-input fuzz there must explain every
 * difference it finds by one of these.
 */
export const STRICTER = {
  numericEventName:
    "numeric event name: socket.io-parser accepts [1, …]; we refuse it (README › Known limits) as no socket.io-client API emits one and handlers are keyed by string",
  base64TextFrame:
    "`b`+base64 text frame: engine.io-parser decodes it as binary on any transport; we refuse it on a WebSocket, where EIO4 clients send binary frames (in a polling payload it is binary, as upstream)",
  payloadAllOrNothing:
    "a polling payload with a bad packet: engine.io-parser returns the packets before it, then an error packet; we refuse the whole payload (the reference server closes the session on the error packet anyway)",
  strictBase64:
    "`b`+base64 in a polling payload: engine.io-parser's browser build decodes any text leniently; we take padded base64 only (every client encodes so)",
  looseNumbers:
    "socket.io-parser reads the type, attachment count and ack id with Number() and `Number(c) == c`, so whitespace or an empty string reads as 0 and `1.0`, `+1`, `0x1`, `1e0`, `001` pass as counts; we take ASCII digits only (type: one, count: one or two)",
  ackIdRange: "ack ids past 2^53: socket.io-parser keeps a rounded Number; we refuse them",
  missingPayload:
    "EVENT, ACK or CONNECT_ERROR without a payload: socket.io-parser validates a payload only when one is present, so `2` passes as an event without a name; we refuse it",
  ackWithoutId: "ACK without an id: socket.io-parser passes it; we refuse it (there is nothing it could answer)",
  placeholder:
    "a placeholder whose num is a fraction (0.5): socket.io-parser indexes the attachments with it and leaves a hole (undefined); we refuse it",
} as const;

/** The polling-payload API (src/protocol/engineio.ts encodePayload / decodePayload). */
export interface PayloadCodec {
  encodePayload(frames: Array<string | ArrayBuffer>): string;
  decodePayload(text: string): { ok: true; value: Array<string | ArrayBuffer> } | { ok: false; reason: string };
}

export const payloads: PayloadCodec = engineio;

/**
 * Not in upstream's test files: socket.io-parser 4.2.7 refuses a binary packet that
 * announces 0 attachments (`n < 1`), which its npm tarball ships without a test. We
 * refuse them too; the live cross-check that 4.2.7 still does is in
 * parsers-differential.test.ts.
 */
export const ZERO_ATTACHMENT_PACKETS = ['50-["x"]', '50-["x",{"_placeholder":true,"num":0}]', "60-1[]", '50-/admin,["x"]', '500-["x"]', "50-"];

