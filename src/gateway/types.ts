/** What the application registers with the gateway, and what the gateway tells it. */
import type { AckCallback, DisconnectReason, Socket } from "./socket.js";

export interface EngineOptions {
  pingInterval: number;
  pingTimeout: number;
  maxPayload: number;
  connectTimeout: number;
  /** Exact origins a browser may connect from (`Origin` header); undefined allows any. */
  allowedOrigins?: readonly string[];
}

/** What the client's upgrade request said, kept for the session's life. */
export interface Handshake {
  query: Record<string, string>;
  headers: Record<string, string>;
  address?: string;
  origin?: string;
}

export interface ConnectRequest {
  auth: Record<string, unknown>;
  handshake: Handshake;
  /** The Engine.IO session id, for logs. */
  sid: string;
}

export type ConnectDecision<Data> =
  | { ok: true; data: Data }
  | { ok: false; error: { message: string; data?: unknown } };

/** One namespace's application: the only place that knows what events mean. */
export interface NamespaceHandler<Data = any> {
  /** Accepts (with per-socket state) or refuses (CONNECT_ERROR) a CONNECT. */
  connect(request: ConnectRequest): ConnectDecision<Data> | Promise<ConnectDecision<Data>>;
  /** Runs once the client has been told it is connected. */
  connected?(socket: Socket<Data>): void | Promise<void>;
  event(socket: Socket<Data>, name: string, args: unknown[], ack: AckCallback | undefined): void | Promise<void>;
  disconnect?(socket: Socket<Data>, reason: DisconnectReason): void | Promise<void>;
}

export type NamespaceRegistry = ReadonlyMap<string, NamespaceHandler>;
