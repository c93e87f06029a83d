/** What an application registers for a namespace, and what the session tells it. */
import type { AckCallback, Socket, SocketState } from "./socket.js";
import type { DisconnectReason, Handshake } from "./types.js";

export interface ConnectRequest {
  auth: Record<string, unknown>;
  handshake: Handshake;
  /** The Engine.IO session id, for logs. */
  sid: string;
}

export type ConnectDecision<Data> =
  | {
      ok: true;
      data: Data;
      /** The Socket.IO id to use: a recovered connection keeps its old one. Fresh when absent. */
      id?: string;
      /** Sent in the CONNECT answer: the client's key to connection state recovery. */
      pid?: string;
    }
  | { ok: false; error: { message: string; data?: unknown } };

/** One namespace's application: the only place that knows what events mean. */
export interface NamespaceHandler<Data = any> {
  /** Accepts (with per-socket state) or refuses (CONNECT_ERROR) a CONNECT. */
  connect(request: ConnectRequest): ConnectDecision<Data> | Promise<ConnectDecision<Data>>;
  /** Runs once the client has been told it is connected. */
  connected?(socket: Socket<Data>): void | Promise<void>;
  event(socket: Socket<Data>, name: string, args: unknown[], ack: AckCallback | undefined): void | Promise<void>;
  disconnect?(socket: Socket<Data>, reason: DisconnectReason): void | Promise<void>;
  /** Rebuilds a socket's data after its host slept (a room's hibernation). Required by hosts that sleep. */
  restore?(state: SocketState, sid: string): Data;
  /**
   * The session is moving to another host (a polling session upgrading to WebSocket): let
   * work in flight finish (no later than `deadline`, ms since the epoch) so its answers are
   * sent here, then stop and return what the new host needs (plain, cloneable data). The
   * socket sends nothing after this. Without it, the socket moves with no application state.
   */
  handOver?(socket: Socket<Data>, deadline: number): unknown | Promise<unknown>;
  /** Rebuilds a socket's data on the host it moved to, from what handOver returned. */
  takeOver?(state: SocketState, snapshot: unknown, sid: string): Data | Promise<Data>;
  /** Runs once a socket that moved here is in place (frames it sends now go after everything handed over). */
  takenOver?(socket: Socket<Data>): void;
}

/** Looks up a namespace's application. */
export interface NamespaceRegistry {
  get(nsp: string): NamespaceHandler | undefined;
}

/** The namespaces of one server: `new Namespaces().of("/", handler)`. */
export class Namespaces implements NamespaceRegistry {
  private readonly handlers = new Map<string, NamespaceHandler>();

  of<Data>(nsp: string, handler: NamespaceHandler<Data>): this {
    this.handlers.set(nsp, handler);
    return this;
  }

  get(nsp: string): NamespaceHandler | undefined {
    return this.handlers.get(nsp);
  }
}
