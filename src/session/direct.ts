/**
 * Client sockets held by a Durable Object with the hibernation API (the direct path):
 * the shared Engine.IO / Socket.IO session runs on each, its state in the socket's
 * attachment. Pings come from one alarm per object per pingInterval, the runtime answers
 * pongs without waking the object (`setWebSocketAutoResponse`), and liveness is read from
 * the auto-response timestamps. Any object can host sessions this way: a room, or a
 * protocol fixture.
 */
import { log } from "../log.js";
import { EngineSession, type EngineState, type Heartbeat } from "./engine.js";
import { randomId } from "./ids.js";
import type { NamespaceRegistry } from "./namespaces.js";
import type { SocketState } from "./socket.js";
import { SocketLayer } from "./sockets.js";
import { CloseCode, type EngineOptions } from "./types.js";

/** What a direct socket keeps in its attachment (well under the 16 KiB limit). */
export interface DirectAttachment<App> {
  kind: "direct";
  engine: EngineState;
  sockets: Record<string, SocketState>;
  /** The application's part (a room keeps the member and its identity here). */
  app?: App;
}

export const DIRECT_TAG = "direct";
const LAST_PING = "direct:lastPingAt";

export class DirectConnection<App = unknown> {
  readonly engine: EngineSession;
  readonly layer: SocketLayer;
  app: App | undefined;
  /** When the outstanding ping went out (heartbeat or probe); 0 when none is. */
  pingSentAt = 0;

  constructor(
    readonly ws: WebSocket,
    attachment: DirectAttachment<App>,
    options: EngineOptions,
    namespaces: NamespaceRegistry,
    /** When this socket's last pong was answered by the runtime (ms; 0: never). */
    private readonly lastPong: () => number,
    /** The session closed the socket itself (ping timeout, protocol error, slow reader). */
    ended: (direct: DirectConnection<App>) => void,
  ) {
    this.app = attachment.app;
    const heartbeat: Heartbeat = {
      start: () => {},
      pong: () => {},
      stop: () => {},
      pinged: () => {
        this.pingSentAt = Date.now();
      },
      ponged: () => this.answered(),
    };
    this.engine = new EngineSession(
      attachment.engine,
      {
        send: (frame) => ws.send(frame),
        close: (code, reason) => {
          ended(this);
          ws.close(code, reason);
        },
      },
      options,
      heartbeat,
    );
    this.layer = new SocketLayer(this.engine, namespaces, { query: {}, headers: {} }, () => this.save());
  }

  save(): void {
    if (this.engine.closed) return;
    const attachment: DirectAttachment<App> = { kind: "direct", engine: this.engine.state, sockets: this.layer.states() };
    if (this.app !== undefined) attachment.app = this.app;
    this.ws.serializeAttachment(attachment);
  }

  /**
   * The heartbeat round: a socket that left its ping unanswered for pingTimeout is closed;
   * one with no ping outstanding gets one. At most one ping is outstanding, so a pong seen
   * after it was sent answers exactly that ping.
   */
  heartbeat(now: number, connectTimeout: number): void {
    if (this.engine.closed) return;
    if (this.answered()) this.engine.pongSeen();
    if (this.pingSentAt !== 0) {
      if (now - this.pingSentAt >= this.engine.options.pingTimeout) this.engine.close("ping timeout");
      return;
    }
    if (this.layer.socketCount === 0 && now - this.engine.state.openedAt >= connectTimeout) {
      return this.engine.close("server namespace disconnect", CloseCode.normal, "connect timeout");
    }
    this.engine.ping();
  }

  /** True (once) when a pong came after the outstanding ping. */
  private answered(): boolean {
    if (this.pingSentAt === 0 || this.lastPong() < this.pingSentAt) return false;
    this.pingSentAt = 0;
    return true;
  }
}

/** The direct sockets of one object, and their heartbeat. */
export class DirectSessions<App = unknown> {
  private readonly byWs = new Map<WebSocket, DirectConnection<App>>();
  private readonly bySid = new Map<string, DirectConnection<App>>();
  /** When the heartbeat last pinged (kept in storage: a dead client is judged across hibernation). */
  private lastPingAt: number;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly options: EngineOptions,
    private readonly namespaces: NamespaceRegistry,
  ) {
    this.lastPingAt = ctx.storage.kv.get<number>(LAST_PING) ?? 0;
    // Pongs are answered by the runtime, so idle sockets never wake the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("3", "6"));
  }

  get size(): number {
    return this.byWs.size;
  }

  values(): IterableIterator<DirectConnection<App>> {
    return this.byWs.values();
  }

  get(ws: WebSocket): DirectConnection<App> | undefined {
    return this.byWs.get(ws);
  }

  bySessionId(sid: string): DirectConnection<App> | undefined {
    return this.bySid.get(sid);
  }

  /** The socket connected to `nsp` with Socket.IO id `socketId`. */
  bySocketId(socketId: string, nsp = "/"): DirectConnection<App> | undefined {
    for (const direct of this.byWs.values()) if (direct.layer.socket(nsp)?.id === socketId) return direct;
    return undefined;
  }

  /** Accepts a client's WebSocket (already checked by the Worker) and opens its session. */
  accept(request: Request): Response {
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [DIRECT_TAG]);
    const attachment: DirectAttachment<App> = { kind: "direct", engine: { sid: randomId(), openedAt: Date.now() }, sockets: {} };
    server.serializeAttachment(attachment);
    const direct = this.add(server, attachment);
    direct.engine.open();
    log("connect", { sid: direct.engine.sid, origin: request.headers.get("Origin") ?? undefined, path: "direct" });
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Brings back a socket after the object slept: its session and namespace sockets. */
  restore(ws: WebSocket): DirectConnection<App> | undefined {
    const attachment = ws.deserializeAttachment() as DirectAttachment<App> | null;
    if (attachment?.kind !== "direct") return undefined;
    const direct = this.add(ws, attachment);
    direct.layer.restore(attachment.sockets);
    // A ping went out at the last round unless the socket is younger than it.
    if (attachment.engine.openedAt < this.lastPingAt) direct.pingSentAt = this.lastPingAt;
    return direct;
  }

  /** The client closed its socket (or it broke): the session ends without answering. */
  lost(ws: WebSocket, reason: "transport close" | "transport error", code?: number): boolean {
    const direct = this.byWs.get(ws);
    if (!direct) return false;
    direct.engine.lost(reason, code);
    this.forget(direct);
    return true;
  }

  /** Closes a session from the server side (e.g. taken over by a recovery). */
  close(direct: DirectConnection<App>, code: number, reason: string): void {
    direct.engine.close("forced close", code, reason);
    this.forget(direct);
  }

  /** When the next heartbeat round is due, if any socket needs one. */
  nextHeartbeatAt(now: number): number | undefined {
    return this.byWs.size > 0 ? Math.max(now, this.lastPingAt + this.options.pingInterval) : undefined;
  }

  /** The heartbeat round, if due: pings every socket and closes the ones gone silent. */
  heartbeat(now: number): void {
    if (this.byWs.size === 0 || now < this.lastPingAt + this.options.pingInterval) return;
    for (const direct of [...this.byWs.values()]) direct.heartbeat(now, this.options.connectTimeout);
    this.lastPingAt = now;
    this.ctx.storage.kv.put(LAST_PING, now);
  }

  private add(ws: WebSocket, attachment: DirectAttachment<App>): DirectConnection<App> {
    const direct = new DirectConnection<App>(
      ws,
      attachment,
      this.options,
      this.namespaces,
      () => this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0,
      (ended) => this.forget(ended),
    );
    this.byWs.set(ws, direct);
    this.bySid.set(direct.engine.sid, direct);
    return direct;
  }

  private forget(direct: DirectConnection<App>): void {
    this.byWs.delete(direct.ws);
    this.bySid.delete(direct.engine.sid);
  }
}
