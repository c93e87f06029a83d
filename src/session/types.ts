/** What every session host shares: options, the handshake, close reasons. */

/** One Engine.IO packet in its WebSocket frame form: text, or a binary `message`. */
export type Frame = string | ArrayBuffer;

export interface EngineOptions {
  pingInterval: number;
  pingTimeout: number;
  maxPayload: number;
  connectTimeout: number;
  /**
   * Bytes a client may owe (sent, not yet shown read) before it must show progress (0: no
   * cap): past it, a client that reads nothing more for `slowReaderTimeout` is cut off.
   */
  maxBacklog: number;
  /** How long a client owing more than maxBacklog may go without reading more (ms; default 10 s). */
  slowReaderTimeout?: number;
  /** Exact origins a browser may connect from (`Origin` header); undefined allows any. */
  allowedOrigins?: readonly string[];
}

/** What the client's first request said, kept for the session's life. */
export interface Handshake {
  query: Record<string, string>;
  headers: Record<string, string>;
  address?: string;
  origin?: string;
}

export type DisconnectReason =
  | "transport close"
  | "transport error"
  | "ping timeout"
  | "parse error"
  | "payload too large"
  | "slow reader"
  | "forced close"
  | "client namespace disconnect"
  | "server namespace disconnect";

/** WebSocket close codes the sessions use. */
export const CloseCode = {
  normal: 1000,
  protocolError: 1002,
  tooBig: 1009,
  /** The peer fell too far behind reading: come back later (and recover). */
  tryAgainLater: 1013,
} as const;
