/**
 * One client connection: the Engine.IO v4 session (handshake, heartbeat, payload
 * limit) and the Socket.IO v5 namespaces multiplexed on it. It lives in the Worker
 * invocation that accepted the WebSocket; timers here cost no duration.
 */
import { log } from "../log.js";
import {
  decodeEnginePacket,
  encodeMessage,
  encodeOpen,
  EnginePacketType,
  exceedsPayload,
} from "../protocol/engineio.js";
import {
  decodeSocketPacket,
  encodeSocketPacket,
  reconstructBinary,
  SocketPacketType,
  type SocketPacket,
} from "../protocol/socketio.js";
import { randomId } from "./ids.js";
import { Socket, type DisconnectReason, type SocketTransport } from "./socket.js";
import type { EngineOptions, Handshake, NamespaceRegistry } from "./types.js";

/** WebSocket close codes the session uses. */
export const CloseCode = { normal: 1000, protocolError: 1002, tooBig: 1009 } as const;

export class Session implements SocketTransport {
  readonly sid = randomId();
  closed = false;
  private readonly openedAt = Date.now();
  private readonly sockets = new Map<string, Socket>();
  /** Namespaces whose CONNECT is being decided (async handlers). */
  private readonly connecting = new Set<string>();
  private pendingBinary: { packet: SocketPacket; buffers: ArrayBuffer[] } | undefined;
  private pingTimer: ReturnType<typeof setTimeout> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly ws: WebSocket,
    private readonly options: EngineOptions,
    private readonly namespaces: NamespaceRegistry,
    readonly handshake: Handshake,
  ) {}

  start(): void {
    // Newer compatibility dates default to "blob", as browsers do; attachments are handled as bytes.
    this.ws.binaryType = "arraybuffer";
    this.ws.addEventListener("message", (event) => this.onFrame(event.data as string | ArrayBuffer));
    this.ws.addEventListener("close", () => this.close("transport close"));
    this.ws.addEventListener("error", () => this.close("transport error"));
    this.ws.send(
      encodeOpen({
        sid: this.sid,
        upgrades: [],
        pingInterval: this.options.pingInterval,
        pingTimeout: this.options.pingTimeout,
        maxPayload: this.options.maxPayload,
      }),
    );
    log("connect", { sid: this.sid, origin: this.handshake.origin });
    this.schedulePing();
    // A client that never joins a namespace holds a socket for nothing.
    this.connectTimer = setTimeout(() => {
      if (this.sockets.size === 0) this.close("server namespace disconnect", CloseCode.normal, "connect timeout");
    }, this.options.connectTimeout);
  }

  sendFrame(frame: string | ArrayBuffer): void {
    if (this.closed) return;
    try {
      this.ws.send(frame);
    } catch {
      this.close("transport error");
    }
  }

  /** Encodes and sends one Socket.IO packet: its header frame, then any binary attachments. */
  sendPacket(packet: SocketPacket): void {
    if (this.closed) return;
    const { header, attachments } = encodeSocketPacket(packet);
    this.sendFrame(encodeMessage(header));
    for (const buffer of attachments) this.sendFrame(buffer);
  }

  leaveNamespace(socket: Socket, reason: DisconnectReason): void {
    if (this.sockets.get(socket.nsp) !== socket) return;
    // Forget it first: a failing send below closes the session, which must not leave it twice.
    this.sockets.delete(socket.nsp);
    if (reason === "server namespace disconnect") {
      socket.sendPacket({ type: SocketPacketType.DISCONNECT, nsp: socket.nsp });
    }
    socket.markDisconnected();
    this.runHandler(() => this.namespaces.get(socket.nsp)?.disconnect?.(socket, reason));
  }

  /** Closes the transport; every namespace socket sees `reason`. Idempotent. */
  close(reason: DisconnectReason, code: number = CloseCode.normal, text = ""): void {
    if (this.closed) return;
    for (const socket of [...this.sockets.values()]) this.leaveNamespace(socket, reason);
    this.closed = true;
    clearTimeout(this.pingTimer);
    clearTimeout(this.pongTimer);
    clearTimeout(this.connectTimer);
    log("disconnect", { sid: this.sid, reason, code, seconds: Math.round((Date.now() - this.openedAt) / 1000) });
    try {
      this.ws.close(code, text || reason);
    } catch {
      // Already closed by the peer: nothing left to tell it.
    }
  }

  /** One ping chain per session: the next ping is scheduled only by the pong to the last one. */
  private schedulePing(): void {
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      this.sendFrame(EnginePacketType.ping);
      this.pongTimer = setTimeout(() => this.close("ping timeout"), this.options.pingTimeout);
    }, this.options.pingInterval);
  }

  private onPong(): void {
    // A pong nobody asked for changes nothing (else each one would start another ping chain).
    if (this.pongTimer === null) return;
    clearTimeout(this.pongTimer);
    this.pongTimer = null;
    this.schedulePing();
  }

  private onFrame(frame: string | ArrayBuffer): void {
    if (this.closed) return;
    if (exceedsPayload(frame, this.options.maxPayload)) {
      this.close("payload too large", CloseCode.tooBig, "payload too large");
      return;
    }
    const decoded = decodeEnginePacket(frame);
    if (!decoded.ok) return this.protocolError(decoded.reason);
    const packet = decoded.value;
    switch (packet.type) {
      case "pong":
        return this.onPong();
      case "message":
        return this.onMessage(packet.data);
      case "close":
        return this.close("transport close");
      case "noop":
        return;
      default:
        // The v4 server pings; a client ping, open or upgrade is out of place here.
        return this.protocolError(`unexpected ${packet.type} packet`);
    }
  }

  private onMessage(data: string | ArrayBuffer): void {
    if (typeof data !== "string") return this.onAttachment(data);
    if (this.pendingBinary) return this.protocolError("text packet while awaiting binary attachments");
    const decoded = decodeSocketPacket(data);
    if (!decoded.ok) return this.protocolError(decoded.reason);
    const packet = decoded.value;
    if (packet.attachments === undefined) return this.onPacket(packet);
    this.pendingBinary = { packet, buffers: [] };
    this.completeBinary(); // a binary packet may announce 0 attachments
  }

  private onAttachment(buffer: ArrayBuffer): void {
    if (!this.pendingBinary) return this.protocolError("binary frame without a binary packet");
    this.pendingBinary.buffers.push(buffer);
    this.completeBinary();
  }

  /** Once every announced attachment is in, rebuilds the packet and handles it. */
  private completeBinary(): void {
    const pending = this.pendingBinary!;
    if (pending.buffers.length < pending.packet.attachments!) return;
    this.pendingBinary = undefined;
    const rebuilt = reconstructBinary(pending.packet, pending.buffers);
    if (!rebuilt.ok) return this.protocolError(rebuilt.reason);
    this.onPacket(rebuilt.value);
  }

  private onPacket(packet: SocketPacket): void {
    const socket = this.sockets.get(packet.nsp);
    if (packet.type === SocketPacketType.CONNECT) {
      if (socket || this.connecting.has(packet.nsp)) return this.protocolError(`second CONNECT to ${packet.nsp}`);
      return void this.connect(packet.nsp, (packet.data as Record<string, unknown> | undefined) ?? {});
    }
    if (!socket) return this.protocolError(`packet for ${packet.nsp} before CONNECT`);
    switch (packet.type) {
      case SocketPacketType.DISCONNECT:
        return this.leaveNamespace(socket, "client namespace disconnect");
      case SocketPacketType.EVENT: {
        const [name, ...args] = packet.data as [string, ...unknown[]];
        const ack = socket.ackFor(packet.id);
        const handler = this.namespaces.get(socket.nsp)!;
        return this.runHandler(() => handler.event(socket, name, args, ack));
      }
      case SocketPacketType.ACK:
        return this.runHandler(() => socket.receiveAck(packet.id!, packet.data as unknown[]));
      default:
        return this.protocolError("CONNECT_ERROR is for servers to send");
    }
  }

  private async connect(nsp: string, auth: Record<string, unknown>): Promise<void> {
    const handler = this.namespaces.get(nsp);
    if (!handler) {
      this.sendConnectError(nsp, { message: "Invalid namespace" });
      return;
    }
    this.connecting.add(nsp);
    let decision: Awaited<ReturnType<typeof handler.connect>>;
    try {
      decision = await handler.connect({ auth, handshake: this.handshake, sid: this.sid });
    } catch (error) {
      log("handler_error", { sid: this.sid, where: "connect", error: String(error) });
      decision = { ok: false, error: { message: "Internal error", data: { code: "internal" } } };
    } finally {
      this.connecting.delete(nsp);
    }
    if (this.closed) return;
    if (!decision.ok) {
      log("connect_refused", { sid: this.sid, nsp, message: decision.error.message });
      return this.sendConnectError(nsp, decision.error);
    }
    clearTimeout(this.connectTimer);
    const socket = new Socket(randomId(), nsp, auth, this, decision.data);
    this.sockets.set(nsp, socket);
    socket.sendPacket({ type: SocketPacketType.CONNECT, nsp, data: { sid: socket.id } });
    this.runHandler(() => handler.connected?.(socket));
  }

  private sendConnectError(nsp: string, error: { message: string; data?: unknown }): void {
    this.sendPacket({ type: SocketPacketType.CONNECT_ERROR, nsp, data: error });
  }

  /** Runs application code so that nothing it throws, sync or async, escapes the session. */
  private runHandler(run: () => void | Promise<void>): void {
    const report = (error: unknown) => log("handler_error", { sid: this.sid, error: String(error) });
    try {
      const result = run();
      if (result instanceof Promise) result.catch(report);
    } catch (error) {
      report(error);
    }
  }

  private protocolError(reason: string): void {
    log("protocol_error", { sid: this.sid, reason: reason.slice(0, 200) });
    this.close("parse error", CloseCode.protocolError, "protocol error");
  }
}
