/**
 * One client socket a Durable Object holds with the hibernation API (the direct path): the
 * shared Engine.IO / Socket.IO session on it, its state in the socket's attachment, and its
 * part of the heartbeat (see DirectSessions in direct.ts for how pongs are matched).
 */
import type { Ping } from "./backlog.js";
import { EngineSession, type EngineState, type Heartbeat } from "./engine.js";
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

/** What a connection needs from the sessions that hold it. */
export interface ConnectionHolder<App> {
  /** When the runtime last answered a pong on `ws` (ms; 0: never). */
  lastPong(ws: WebSocket): number;
  /** The session closed the socket itself (ping timeout, protocol error, slow reader). */
  ended(direct: DirectConnection<App>): void;
  /** A probe is about to go out on `direct`. */
  probing(direct: DirectConnection<App>): void;
  /** A pong came on `direct`: it may have no probe out any more. */
  settled(direct: DirectConnection<App>): void;
  /** `direct` owes more than the slow-reader cap: look at it again at `deadline`. */
  behind(direct: DirectConnection<App>, deadline: number): void;
}

export class DirectConnection<App = unknown> {
  readonly engine: EngineSession;
  readonly layer: SocketLayer;
  app: App | undefined;
  /** The heartbeat ping of the last round while it is unanswered. */
  heartbeatPing: Ping | undefined;
  /** While it owes more than the slow-reader cap: when the alarm looks at it next. */
  slowLookAt: number | undefined;
  /** The auto-response timestamp as last looked at: a later one is a pong since. */
  private seenPongAt: number;

  constructor(
    readonly ws: WebSocket,
    attachment: DirectAttachment<App>,
    options: EngineOptions,
    namespaces: NamespaceRegistry,
    private readonly host: ConnectionHolder<App>,
  ) {
    this.app = attachment.app;
    this.seenPongAt = host.lastPong(ws);
    const heartbeat: Heartbeat = {
      start: () => {},
      stop: () => {},
      pong: (ping) => {
        if (this.heartbeatPing && ping.serial >= this.heartbeatPing.serial) this.heartbeatPing = undefined;
        host.settled(this);
      },
      probing: () => host.probing(this),
      behind: (deadline) => host.behind(this, deadline),
      stray: () => this.save(),
    };
    this.engine = new EngineSession(
      attachment.engine,
      {
        send: (frame) => ws.send(frame),
        close: (code, reason) => {
          host.ended(this);
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
    // Without the pid: a bearer secret is kept only as its hash (the room's connections table).
    const sockets = Object.fromEntries(Object.entries(this.layer.states()).map(([nsp, { id }]) => [nsp, { id }]));
    const attachment: DirectAttachment<App> = { kind: "direct", engine: this.engine.state, sockets };
    if (this.app !== undefined) attachment.app = this.app;
    this.ws.serializeAttachment(attachment);
  }

  /** When the runtime last answered a pong on this socket (ms; 0: never). */
  get lastPongAt(): number {
    return this.host.lastPong(this.ws);
  }

  /**
   * Takes in a pong the runtime answered since the last look: it answers the ping out (at
   * most one while the runtime answers pongs), or nobody's if it came before it.
   */
  look(): void {
    if (this.engine.closed) return;
    const at = this.host.lastPong(this.ws);
    if (at <= this.seenPongAt) return;
    this.seenPongAt = at;
    this.engine.pongSeen(at);
  }

  /** Closes the socket if its heartbeat ping went unanswered for pingTimeout; true when it is closed. */
  judge(now: number): boolean {
    this.look();
    const ping = this.heartbeatPing;
    if (ping && !this.engine.closed && now - ping.at >= this.engine.options.pingTimeout) this.engine.close("ping timeout");
    return this.engine.closed;
  }

  /**
   * The heartbeat round: judged, then pinged unless its last heartbeat ping is still out.
   * When it was pinged goes in the attachment (free), so that the round after a hibernation
   * still judges it, with nothing written to storage.
   */
  beat(now: number): void {
    if (this.judge(now)) return;
    const deadline = this.connectDeadline();
    if (deadline !== undefined && now >= deadline) {
      return this.engine.close("server namespace disconnect", CloseCode.normal, "connect timeout");
    }
    if (this.heartbeatPing) return;
    this.heartbeatPing = this.engine.ping(true);
    if (!this.heartbeatPing) return;
    this.engine.state.pingedAt = this.heartbeatPing.at;
    this.save();
  }

  /** When a socket with no namespace is closed (CONNECT_TIMEOUT_MS after it opened); undefined while it has one. */
  connectDeadline(): number | undefined {
    if (this.layer.socketCount > 0) return undefined;
    return this.engine.state.openedAt + this.engine.options.connectTimeout;
  }
}
