/**
 * One client's connection to one namespace: what application handlers see.
 * It knows Socket.IO packets, not rooms; frames go out through its session.
 */
import { SocketPacketType, type SocketPacket } from "../protocol/socketio.js";
import type { Traffic } from "./engine.js";
import type { DisconnectReason, Frame } from "./types.js";

/** The slice of the Socket.IO layer a socket may use. */
export interface SocketTransport {
  /** The Engine.IO session id, for logs. */
  readonly sid: string;
  /** What the session carried so far. */
  readonly traffic: Traffic;
  sendFrame(frame: Frame, bytes?: number): void;
  sendPacket(packet: SocketPacket): void;
  /** Ends the namespace connection from the server side (sends DISCONNECT). */
  leaveNamespace(socket: Socket, reason: DisconnectReason): void;
}

/** Answers a client's EVENT. `id` is its ack id, for answers encoded elsewhere (a room). */
export interface AckCallback {
  (...args: unknown[]): void;
  readonly id: number;
}

/** A namespace connection's durable part: what a room keeps in the attachment. */
export interface SocketState {
  /** The Socket.IO id: fresh per namespace connection (restored on recovery), never the Engine.IO sid. */
  id: string;
  /** The private session id for connection state recovery, when the application offers it. */
  pid?: string;
}

export class Socket<Data = unknown> {
  /** Application state for this connection; the session never reads it. */
  data: Data;
  /** @internal The id of the next ack this side asks for; carried when the session moves. */
  nextAckId = 0;
  private readonly pendingAcks = new Map<number, (...args: unknown[]) => void>();
  connected = true;

  constructor(
    readonly state: SocketState,
    readonly nsp: string,
    /** The CONNECT payload, `{}` when the client sent none (or the socket was restored). */
    readonly auth: Record<string, unknown>,
    private readonly transport: SocketTransport,
    data: Data,
  ) {
    this.data = data;
  }

  get id(): string {
    return this.state.id;
  }

  /** The Engine.IO session id. */
  get sid(): string {
    return this.transport.sid;
  }

  /** What the connection's session carried so far (frames both ways, requests). */
  get traffic(): Traffic {
    return this.transport.traffic;
  }

  /** Emits an event; a trailing function asks the client for an ack. */
  emit(event: string, ...args: unknown[]): void {
    let id: number | undefined;
    const last = args.at(-1);
    if (typeof last === "function") {
      args.pop();
      id = this.nextAckId++;
      this.pendingAcks.set(id, last as (...args: unknown[]) => void);
    }
    this.sendPacket({ type: SocketPacketType.EVENT, nsp: this.nsp, id, data: [event, ...args] });
  }

  /** Sends an Engine.IO frame as it is: the path for frames encoded elsewhere (rooms). `bytes` as EngineSession.send. */
  sendFrame(frame: string, bytes?: number): void {
    if (this.connected) this.transport.sendFrame(frame, bytes);
  }

  disconnect(): void {
    if (this.connected) this.transport.leaveNamespace(this, "server namespace disconnect");
  }

  /** @internal Sends one packet, binary attachments included. */
  sendPacket(packet: SocketPacket): void {
    if (this.connected) this.transport.sendPacket(packet);
  }

  /** @internal An ACK from the client for one of our emits. Unknown ids are ignored. */
  receiveAck(id: number, args: unknown[]): void {
    const callback = this.pendingAcks.get(id);
    if (!callback) return;
    this.pendingAcks.delete(id);
    callback(...args);
  }

  /** Answers the client's ack id `id` (an EVENT it sent asking for one). */
  ack(id: number, ...args: unknown[]): void {
    this.sendPacket({ type: SocketPacketType.ACK, nsp: this.nsp, id, data: args });
  }

  /** @internal Builds the callback that answers the client's EVENT with an ACK, once. */
  ackFor(id: number | undefined): AckCallback | undefined {
    if (id === undefined) return undefined;
    let sent = false;
    const answer = (...args: unknown[]) => {
      if (sent) return;
      sent = true;
      this.ack(id, ...args);
    };
    return Object.assign(answer, { id });
  }

  /** @internal */
  markDisconnected(): void {
    this.connected = false;
    this.pendingAcks.clear();
  }
}
