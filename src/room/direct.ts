/**
 * A client's own socket in the room (the direct path): the room holds it with the
 * hibernation API and runs the shared Engine.IO / Socket.IO session on it. Pings come
 * from the room's alarm, pongs are answered by the runtime without waking the room,
 * and liveness is read from the auto-response timestamp. Everything the connection
 * must keep across hibernation lives in its attachment.
 */
import type { Identity } from "../chat/identity.js";
import { EngineSession, type EngineState, type Heartbeat } from "../session/engine.js";
import type { NamespaceRegistry } from "../session/namespaces.js";
import type { SocketState } from "../session/socket.js";
import { SocketLayer } from "../session/sockets.js";
import type { EngineOptions } from "../session/types.js";
import type { Member, Participant } from "./member.js";

/** What a direct socket keeps in its attachment (well under the 16 KiB limit). */
export interface DirectAttachment {
  kind: "direct";
  engine: EngineState;
  sockets: Record<string, SocketState>;
  identity?: { username: string; pullRequests?: string[]; expiresAt: number };
  /** Set while the connection is in the room. */
  member?: Member;
}

export class DirectConnection implements Participant {
  readonly engine: EngineSession;
  readonly layer: SocketLayer;
  member: Member | undefined;
  identity: Identity | undefined;
  /** When the outstanding ping went out (heartbeat or probe); 0 when none is. */
  pingSentAt = 0;

  constructor(
    readonly ws: WebSocket,
    attachment: DirectAttachment,
    options: EngineOptions,
    namespaces: NamespaceRegistry,
    /** The room's view of auto-responses: when this socket's last pong was answered. */
    private readonly lastPong: () => number,
    /** The session closed the socket itself (ping timeout, protocol error, slow reader). */
    ended: (direct: DirectConnection) => void,
  ) {
    this.member = attachment.member;
    const { identity } = attachment;
    this.identity = identity && {
      username: identity.username,
      pullRequests: identity.pullRequests && new Set(identity.pullRequests),
      expiresAt: identity.expiresAt,
      scopes: new Set(),
    };
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

  send(frame: string, bytes: number): void {
    this.engine.send(frame, bytes);
  }

  save(): void {
    if (this.engine.closed) return;
    const attachment: DirectAttachment = { kind: "direct", engine: this.engine.state, sockets: this.layer.states() };
    if (this.identity) {
      attachment.identity = {
        username: this.identity.username,
        pullRequests: this.identity.pullRequests && [...this.identity.pullRequests],
        expiresAt: this.identity.expiresAt,
      };
    }
    if (this.member) attachment.member = this.member;
    this.ws.serializeAttachment(attachment);
  }

  /**
   * The heartbeat round (the room's alarm): a socket that left its ping unanswered for
   * pingTimeout is closed; one with no ping outstanding gets one. At most one ping is
   * outstanding, so a pong seen after it was sent answers exactly that ping.
   */
  heartbeat(now: number, connectTimeout: number): void {
    if (this.engine.closed) return;
    if (this.answered()) this.engine.pongSeen();
    if (this.pingSentAt !== 0) {
      if (now - this.pingSentAt >= this.engine.options.pingTimeout) this.engine.close("ping timeout");
      return;
    }
    if (this.layer.socketCount === 0 && now - this.engine.state.openedAt >= connectTimeout) {
      return this.engine.close("server namespace disconnect", 1000, "connect timeout");
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
