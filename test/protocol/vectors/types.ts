/**
 * Shape of the generated test/protocol/vectors/<package>/vectors.ts files: every call
 * an upstream parser test made into the real parser, with what that parser answered.
 * Written by scripts/extract-parser-vectors.mjs, replayed by ../parser-vectors.test.ts.
 */

/**
 * JSON standing for a value (revive.ts turns it back): plain JSON as itself; tagged
 * objects for the rest: `$binary` (+ `hex`), `$undefined`, `$ref` (JSON pointer, for
 * cycles), `$toJSON` (+ `own`), `$nullPrototype`, `$class`, `$object` (keys with `$`),
 * `$function`, `$date`, `$error`, `$number`.
 */
export type Snap = null | boolean | number | string | Snap[] | { [key: string]: Snap };

/** socket.io-parser: `new Encoder().encode`, `new Decoder(opts)`, `add`, "decoded", `destroy`, `isPacketValid`. */
export type SocketIoOp =
  | { op: "encode"; packet: Snap; out?: Snap; throws?: string }
  | { op: "decoder"; decoder: number; opts?: Snap }
  | { op: "add"; decoder: number; chunk: Snap; throws?: string }
  | { op: "decoded"; decoder: number; packet: Snap }
  | { op: "destroy"; decoder: number }
  | { op: "isPacketValid"; packet: Snap; result: boolean };

/** engine.io-parser: single packets, polling payloads, and (usage only) WebTransport streams. */
export type EngineIoOp =
  | { op: "encodePacket"; packet: Snap; supportsBinary: boolean; out?: Snap }
  | { op: "decodePacket"; data: Snap; binaryType: Snap; out: Snap }
  | { op: "encodePayload"; packets: Snap; out?: string }
  | { op: "decodePayload"; payload: string; binaryType: Snap; out: Snap }
  | { op: "stream"; kind: "createPacketEncoderStream" | "createPacketDecoderStream" };

export interface VectorTest {
  /** Which upstream run recorded it (engine.io-parser runs its Node and browser builds). */
  run: string;
  /** Upstream test file, relative to the package directory. */
  file: string;
  /** describe titles, then the `it` title. */
  title: string[];
  ops: Array<SocketIoOp | EngineIoOp>;
}

export interface VectorSuite {
  package: string;
  /** The installed version the upstream tests ran against when the vectors were extracted. */
  npmVersion: string;
  repository: string;
  commit: string;
  testFiles: string[];
  runs: Array<{ name: string; entry: string; build: string }>;
  /** Constants read from the package (protocol number, packet type table). */
  meta: { [key: string]: Snap };
  tests: VectorTest[];
}
