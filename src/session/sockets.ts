/**
 * The Socket.IO v5 layer of one Engine.IO session: namespaces multiplexed on it,
 * CONNECT / CONNECT_ERROR / DISCONNECT, events and acks in both directions, binary
 * attachments. Host-agnostic: it rides on an EngineSession wherever that lives.
 */
import { log } from "../util/log.js";
import { encodeMessage } from "../protocol/engineio.js";
import {
  decodeSocketPacket,
  encodeSocketPacket,
  reconstructBinary,
  SocketPacketType,
  type SocketPacket,
} from "../protocol/socketio.js";
import type { EngineApplication, EngineSession, Traffic } from "./engine.js";
import { settleBy } from "../util/deadline.js";
import { randomId } from "../util/ids.js";
import type { NamespaceRegistry } from "./namespaces.js";
import { Socket, type SocketState, type SocketTransport } from "./socket.js";
import type { DisconnectReason, Frame, Handshake } from "./types.js";

/** A binary packet whose attachments are still coming. */
interface PendingBinary {
  packet: SocketPacket;
  buffers: ArrayBuffer[];
}

/** What a SocketLayer hands to the host its session moves to: plain, cloneable data. */
export interface SocketLayerSnapshot {
  sockets: Array<{ nsp: string; state: SocketState; nextAckId: number; app: unknown }>;
  /** A binary packet whose attachments come on the new transport (a polling POST may split one). */
  pendingBinary?: PendingBinary;
}

export class SocketLayer implements EngineApplication, SocketTransport {
  private readonly sockets = new Map<string, Socket>();
  /** Namespaces whose CONNECT is being decided (async handlers), and when each is decided. */
  private readonly connecting = new Map<string, Promise<void>>();
  private pendingBinary: PendingBinary | undefined;
  /** Called once when the session closes (a host clears its timers then). */
  onClosed: (() => void) | undefined;

  constructor(
    private readonly engine: EngineSession,
    private readonly namespaces: NamespaceRegistry,
    readonly handshake: Handshake,
    /** Called when the set of connected namespaces changes: a sleeping host saves its state then. */
    private readonly changed?: () => void,
  ) {
    engine.app = this;
  }

  get sid(): string {
    return this.engine.sid;
  }

  get traffic(): Traffic {
    return this.engine.traffic;
  }

  /** The Socket.IO ids of this session (one per connected namespace), for the session's log lines. */
  logIds(): { socketId?: string } {
    const ids = Array.from(this.sockets.values(), (socket) => socket.id).join(",");
    return ids ? { socketId: ids } : {};
  }

  /** Connected namespaces, for the connect timeout. */
  get socketCount(): number {
    return this.sockets.size;
  }

  socket(nsp: string): Socket | undefined {
    return this.sockets.get(nsp);
  }

  /** The durable part: each connected namespace's socket state. */
  states(): Record<string, SocketState> {
    return Object.fromEntries(Array.from(this.sockets, ([nsp, socket]) => [nsp, socket.state]));
  }

  /** Brings back the sockets of a session whose host slept. */
  restore(states: Record<string, SocketState>): void {
    for (const [nsp, state] of Object.entries(states)) {
      const handler = this.namespaces.get(nsp);
      if (!handler?.restore) continue;
      this.sockets.set(nsp, new Socket(state, nsp, {}, this, handler.restore(state, this.sid)));
    }
  }

  sendFrame(frame: Frame, bytes?: number): void {
    this.engine.send(frame, bytes);
  }

  /** Encodes and sends one Socket.IO packet: its header frame, then any binary attachments. */
  sendPacket(packet: SocketPacket): void {
    if (this.engine.closed) return;
    const { header, attachments } = encodeSocketPacket(packet);
    this.engine.send(encodeMessage(header));
    for (const buffer of attachments) this.engine.send(buffer);
  }

  leaveNamespace(socket: Socket, reason: DisconnectReason): void {
    if (this.sockets.get(socket.nsp) !== socket) return;
    // Forget it first: a failing send below closes the session, which must not leave it twice.
    this.sockets.delete(socket.nsp);
    if (reason === "server namespace disconnect") {
      socket.sendPacket({ type: SocketPacketType.DISCONNECT, nsp: socket.nsp });
    }
    socket.markDisconnected();
    this.runHandler(socket, () => this.namespaces.get(socket.nsp)?.disconnect?.(socket, reason));
    this.changed?.();
  }

  /** The Engine.IO session closed: every namespace socket sees `reason`. */
  closed(reason: DisconnectReason): void {
    for (const socket of [...this.sockets.values()]) this.leaveNamespace(socket, reason);
    this.onClosed?.();
    this.onClosed = undefined;
  }

  /**
   * The session moves to another host: CONNECTs being decided finish first (their answers
   * must go out here), then each namespace's application settles and says what to carry.
   * Undefined when a CONNECT is still undecided at `deadline`: such a session cannot move.
   */
  async handOver(deadline: number): Promise<SocketLayerSnapshot | undefined> {
    if (this.connecting.size > 0 && (await settleBy(Promise.all(this.connecting.values()), deadline)) === undefined) return undefined;
    const sockets = await Promise.all(
      Array.from(this.sockets, async ([nsp, socket]) => {
        const handler = this.namespaces.get(nsp);
        const app = await handler?.handOver?.(socket, deadline);
        return { nsp, state: socket.state, nextAckId: socket.nextAckId, app };
      }),
    );
    this.onClosed?.();
    this.onClosed = undefined;
    return this.pendingBinary ? { sockets, pendingBinary: this.pendingBinary } : { sockets };
  }

  /**
   * Puts back the sockets of a session that moved here, with the ids the client knows, and
   * runs each application's takenOver once all are in place.
   */
  async takeOver(snapshot: SocketLayerSnapshot): Promise<void> {
    const taken = await Promise.all(
      snapshot.sockets.map(async ({ nsp, state, nextAckId, app }) => {
        const handler = this.namespaces.get(nsp);
        if (!handler) return undefined;
        const data = handler.takeOver ? await handler.takeOver(state, app, this.sid) : handler.restore?.(state, this.sid);
        const socket = new Socket(state, nsp, {}, this, data);
        socket.nextAckId = nextAckId;
        return { socket, handler };
      }),
    );
    this.pendingBinary = snapshot.pendingBinary;
    for (const entry of taken) if (entry) this.sockets.set(entry.socket.nsp, entry.socket);
    for (const entry of taken) if (entry) this.runHandler(entry.socket, () => entry.handler.takenOver?.(entry.socket));
  }

  message(data: string | ArrayBuffer): void {
    if (typeof data !== "string") return this.onAttachment(data);
    if (this.pendingBinary) return this.engine.protocolError("text packet while awaiting binary attachments");
    const decoded = decodeSocketPacket(data);
    if (!decoded.ok) return this.engine.protocolError(decoded.reason);
    const packet = decoded.value;
    if (packet.attachments === undefined) return this.onPacket(packet);
    this.pendingBinary = { packet, buffers: [] };
  }

  private onAttachment(buffer: ArrayBuffer): void {
    const pending = this.pendingBinary;
    if (!pending) return this.engine.protocolError("binary frame without a binary packet");
    pending.buffers.push(buffer);
    if (pending.buffers.length < pending.packet.attachments!) return;
    this.pendingBinary = undefined;
    const rebuilt = reconstructBinary(pending.packet, pending.buffers);
    if (!rebuilt.ok) return this.engine.protocolError(rebuilt.reason);
    this.onPacket(rebuilt.value);
  }

  private onPacket(packet: SocketPacket): void {
    const socket = this.sockets.get(packet.nsp);
    if (packet.type === SocketPacketType.CONNECT) {
      if (socket || this.connecting.has(packet.nsp)) return this.engine.protocolError(`second CONNECT to ${packet.nsp}`);
      const nsp = packet.nsp;
      const decided = this.connect(nsp, (packet.data as Record<string, unknown> | undefined) ?? {});
      // Deleted again once decided (connect awaits the handler before anything else).
      if (this.namespaces.get(nsp)) this.connecting.set(nsp, decided);
      return;
    }
    if (!socket) return this.engine.protocolError(`packet for ${packet.nsp} before CONNECT`);
    switch (packet.type) {
      case SocketPacketType.DISCONNECT:
        return this.leaveNamespace(socket, "client namespace disconnect");
      case SocketPacketType.EVENT: {
        const [name, ...args] = packet.data as [string, ...unknown[]];
        const ack = socket.ackFor(packet.id);
        const handler = this.namespaces.get(socket.nsp)!;
        return this.runHandler(socket, () => handler.event(socket, name, args, ack));
      }
      case SocketPacketType.ACK:
        return this.runHandler(socket, () => socket.receiveAck(packet.id!, packet.data as unknown[]));
      default:
        return this.engine.protocolError("CONNECT_ERROR is for servers to send");
    }
  }

  private async connect(nsp: string, auth: Record<string, unknown>): Promise<void> {
    const handler = this.namespaces.get(nsp);
    if (!handler) return this.sendConnectError(nsp, { message: "Invalid namespace" });
    let decision: Awaited<ReturnType<typeof handler.connect>>;
    try {
      decision = await handler.connect({ auth, handshake: this.handshake, sid: this.sid });
    } catch (error) {
      log("handler_error", { sid: this.sid, where: "connect", error: String(error) });
      decision = { ok: false, error: { message: "Internal error", data: { code: "internal" } } };
    } finally {
      this.connecting.delete(nsp);
    }
    if (this.engine.closed) {
      // The client left while we decided: let the application undo what it set up.
      if (decision.ok) this.runHandler(undefined, () => handler.disconnect?.(new Socket({ id: decision.id ?? "" }, nsp, auth, this, decision.data), "transport close"));
      return;
    }
    if (!decision.ok) {
      log("connect_refused", { sid: this.sid, nsp, message: decision.error.message });
      return this.sendConnectError(nsp, decision.error);
    }
    const state: SocketState = { id: decision.id ?? randomId() };
    if (decision.pid !== undefined) state.pid = decision.pid;
    const socket = new Socket(state, nsp, auth, this, decision.data);
    this.sockets.set(nsp, socket);
    socket.sendPacket({ type: SocketPacketType.CONNECT, nsp, data: { sid: socket.id, ...(state.pid && { pid: state.pid }) } });
    this.changed?.();
    this.runHandler(socket, () => handler.connected?.(socket));
  }

  private sendConnectError(nsp: string, error: { message: string; data?: unknown }): void {
    this.sendPacket({ type: SocketPacketType.CONNECT_ERROR, nsp, data: error });
  }

  /** Runs application code so that nothing it throws, sync or async, escapes the session. */
  private runHandler(socket: Socket | undefined, run: () => void | Promise<void>): void {
    const report = (error: unknown) => log("handler_error", { sid: this.sid, socketId: socket?.id, error: String(error) });
    try {
      const result = run();
      if (result instanceof Promise) result.catch(report);
    } catch (error) {
      report(error);
    }
  }
}
