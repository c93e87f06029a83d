/**
 * Client sockets held by a Durable Object with the hibernation API (the direct path):
 * the shared Engine.IO / Socket.IO session runs on each, its state in the socket's
 * attachment. The object's one alarm drives the heartbeat: a round pings every socket each
 * pingInterval, and judges the pings of the round before (a socket that left its ping
 * unanswered for pingTimeout is closed). One alarm invocation per round, and it writes
 * nothing but the next alarm: when each socket was pinged rides in its attachment, which
 * is kept in memory across hibernation, not in storage. While no probe is out, the runtime
 * answers pongs without waking the object (`setWebSocketAutoResponse`) and liveness is
 * read from the auto-response timestamps. Any object can host sessions this way: a room,
 * or a protocol fixture.
 *
 * Matching pongs to pings. Engine.IO pongs carry nothing: the n-th pong answers the n-th
 * ping, so proof of reading needs every pong counted. The auto-response cannot count: the
 * runtime only keeps the time of the last pong it answered, per socket, and it answers
 * pongs nobody asked for too; it is also set per object, not per socket. So:
 * - While no socket has a probe out, each socket has at most one ping out (the round's),
 *   and a pong seen by its timestamp answers it if it came after it and within
 *   pingTimeout. The alarm looks once per round, so it sees the last pong of the round:
 *   one that came later than that answers nothing (it came unasked, or too late), leaves
 *   the ping unanswered, and the socket is closed for it.
 * - Before any probe goes out, the object turns the auto-response off, having taken in the
 *   timestamps first; until no probe is out anywhere, every pong reaches the session as a
 *   message and is matched exactly, as on the gateway. That is sound because the runtime
 *   delivers a socket's frames in order and answers a pong either itself (timestamp) or by
 *   delivering it (message), never both, and the switch happens while the object runs, so
 *   no pong falls between the two. While it is off, idle sockets' pongs wake the object:
 *   only during bursts, when it is awake anyway.
 */
import { log } from "../util/log.js";
import { randomId } from "../util/ids.js";
import { DirectConnection, type DirectAttachment } from "./direct-connection.js";
import { LATE_LOOK_MS, LOOK_AGAIN_MS } from "./engine.js";
import { HandshakeError, refuse } from "./handshake.js";
import type { NamespaceRegistry } from "./namespaces.js";
import { CloseCode, type EngineOptions } from "./types.js";


export const DIRECT_TAG = "direct";

/**
 * Sockets one object holds that have not CONNECTed to a namespace yet. A client CONNECTs
 * within a round trip of opening, so this many only wait at once under a flood of sockets
 * that never will; such a flood then holds no more than this many of the object's sockets,
 * and each for no longer than CONNECT_TIMEOUT_MS (the alarm closes it on time).
 */
export const MAX_PENDING_DIRECT = 100;

/**
 * With MAX_PENDING_DIRECT sockets waiting, a new one takes the place of the oldest if that
 * has waited this long (far longer than a CONNECT takes), and is refused (HTTP 503, Engine.IO
 * error 3) otherwise. Without it, 100 sockets opened per CONNECT_TIMEOUT_MS would keep every
 * new client out; with it, keeping them out takes 100 new sockets every 2 s, without pause.
 */
export const PENDING_GRACE_MS = 2_000;

export interface DirectSessionsSettings {
  /** Sockets that have not CONNECTed yet this object holds at most (MAX_PENDING_DIRECT). */
  maxPending?: number;
  /** How long the oldest of those keeps its place against a new socket (PENDING_GRACE_MS). */
  pendingGrace?: number;
  /**
   * Makes the object's alarm fire at `at` or earlier (then the object calls `heartbeat`):
   * for a slow reader's deadline, which comes up between rounds.
   */
  wake: (at: number) => void;
}

/** The direct sockets of one object, and their heartbeat. */
export class DirectSessions<App = unknown> {
  private readonly byWs = new Map<WebSocket, DirectConnection<App>>();
  private readonly bySid = new Map<string, DirectConnection<App>>();
  /**
   * When the last round pinged; undefined while no socket is here. After hibernation, the
   * earliest of each socket's last ping (or its open, if no round has pinged it yet): the
   * next round then comes within pingInterval of it, as the client's own timer expects.
   */
  private lastPingAt: number | undefined;
  /** Sockets with no namespace yet: capped, and closed at their connect deadline. */
  private readonly pending = new Set<DirectConnection<App>>();
  /** Sockets with a probe out: while there is one, pongs come to the object as messages. */
  private readonly probing = new Set<DirectConnection<App>>();
  /** Sockets over the slow-reader cap, looked at again at their deadline. */
  private readonly behind = new Set<DirectConnection<App>>();
  private readonly pongPair: WebSocketRequestResponsePair;
  private autoResponding = true;
  /** The auto-response is being switched (the switch looks at every socket, which may close some). */
  private switching = false;
  private readonly maxPending: number;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly options: EngineOptions,
    private readonly namespaces: NamespaceRegistry,
    private readonly settings: DirectSessionsSettings,
  ) {
    this.maxPending = settings.maxPending ?? MAX_PENDING_DIRECT;
    // Pongs are answered by the runtime, so idle sockets never wake the object.
    this.pongPair = new WebSocketRequestResponsePair("3", "6");
    ctx.setWebSocketAutoResponse(this.pongPair);
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

  /** Sockets that have not CONNECTed yet. */
  get pendingCount(): number {
    for (const direct of this.pending) if (direct.connectDeadline() === undefined) this.pending.delete(direct);
    return this.pending.size;
  }

  /**
   * Accepts a client's WebSocket (already checked by the Worker) and opens its session; or
   * refuses it, as the reference server refuses a bad request, while MAX_PENDING_DIRECT
   * sockets here have not CONNECTed yet, none of them for PENDING_GRACE_MS.
   */
  accept(request: Request): Response {
    if (this.pendingCount >= this.maxPending && !this.makeRoom(Date.now())) {
      const message = `Bad request: ${this.maxPending} connections here have not sent CONNECT yet; try again shortly`;
      return refuse({ code: HandshakeError.BAD_REQUEST.code, message }, 503);
    }
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [DIRECT_TAG]);
    const attachment: DirectAttachment<App> = { kind: "direct", engine: { sid: randomId(), openedAt: Date.now() }, sockets: {} };
    server.serializeAttachment(attachment);
    this.lastPingAt ??= attachment.engine.openedAt;
    const direct = this.add(server, attachment);
    this.pending.add(direct);
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
    if (direct.connectDeadline() !== undefined) this.pending.add(direct);
    // A round pinged it unless it is younger than the last; a pong the runtime answered since was the answer.
    const { pingedAt, openedAt } = attachment.engine;
    if (pingedAt !== undefined && direct.lastPongAt < pingedAt) direct.heartbeatPing = direct.engine.restorePing(pingedAt);
    this.lastPingAt = Math.min(this.lastPingAt ?? Infinity, pingedAt ?? openedAt);
    return direct;
  }

  /** The client closed its socket (or it broke): the session ends without answering. */
  lost(ws: WebSocket, reason: "transport close" | "transport error", code?: number): boolean {
    const direct = this.byWs.get(ws);
    if (!direct) return false;
    direct.engine.lost(reason, code);
    this.remove(direct);
    return true;
  }

  /** Closes a session from the server side (e.g. taken over by a recovery). */
  close(direct: DirectConnection<App>, code: number, reason: string): void {
    direct.engine.close("forced close", code, reason);
    this.remove(direct);
  }

  /**
   * When the alarm must next fire, if any socket needs it: the next round (which judges the
   * last one's pings), the earliest CONNECT deadline and the earliest slow-reader deadline.
   * No socket, no alarm.
   */
  nextHeartbeatAt(now: number): number | undefined {
    if (this.byWs.size === 0) return undefined;
    let next = (this.lastPingAt ?? now) + this.options.pingInterval;
    for (const direct of this.pending) {
      const deadline = direct.connectDeadline();
      if (deadline === undefined) this.pending.delete(direct);
      else next = Math.min(next, deadline);
    }
    for (const direct of this.behind) {
      const lookAt = direct.engine.slowReaderDeadline === undefined ? undefined : direct.slowLookAt;
      if (lookAt === undefined) this.behind.delete(direct);
      else next = Math.min(next, lookAt);
    }
    return Math.max(now, next);
  }

  /**
   * What is due at `now` (the alarm fired): sockets past their CONNECT deadline closed, slow
   * readers looked at, and the round if due (each socket judged on the last round's ping,
   * then pinged).
   */
  heartbeat(now: number): void {
    if (this.byWs.size === 0) return;
    for (const direct of [...this.pending]) {
      const deadline = direct.connectDeadline();
      if (deadline === undefined) this.pending.delete(direct);
      else if (now >= deadline) direct.engine.close("server namespace disconnect", CloseCode.normal, "connect timeout");
    }
    for (const direct of [...this.behind]) this.lookAtSlowReader(direct, now);
    if (now < (this.lastPingAt ?? now) + this.options.pingInterval) return;
    for (const direct of [...this.byWs.values()]) direct.beat(now);
    this.lastPingAt = now;
  }

  /**
   * The alarm's look at a socket over the slow-reader cap, when due: as of its deadline, so
   * a pong handled since counts; one that runs late (the object was busy, and the client's
   * pongs may be queued just behind it) is taken again LOOK_AGAIN_MS later (see LATE_LOOK_MS).
   */
  private lookAtSlowReader(direct: DirectConnection<App>, now: number): void {
    const due = direct.slowLookAt;
    if (direct.engine.closed || direct.engine.slowReaderDeadline === undefined || due === undefined) {
      direct.slowLookAt = undefined;
      this.behind.delete(direct);
      return;
    }
    if (now < due) return;
    if (now - due > LATE_LOOK_MS) {
      direct.slowLookAt = now + LOOK_AGAIN_MS;
      this.settings.wake(direct.slowLookAt);
      return;
    }
    direct.engine.check(Math.min(direct.engine.slowReaderDeadline, now));
    direct.slowLookAt = direct.engine.slowReaderDeadline;
    if (direct.slowLookAt === undefined) this.behind.delete(direct);
  }

  /** Closes the oldest socket still waiting to CONNECT, if it has waited PENDING_GRACE_MS. */
  private makeRoom(now: number): boolean {
    let oldest: DirectConnection<App> | undefined;
    for (const direct of this.pending) if (!oldest || direct.engine.state.openedAt < oldest.engine.state.openedAt) oldest = direct;
    if (!oldest || now - oldest.engine.state.openedAt < (this.settings.pendingGrace ?? PENDING_GRACE_MS)) return false;
    oldest.engine.close("server namespace disconnect", CloseCode.normal, "connect timeout");
    return true;
  }

  private add(ws: WebSocket, attachment: DirectAttachment<App>): DirectConnection<App> {
    const direct = new DirectConnection<App>(ws, attachment, this.options, this.namespaces, {
      lastPong: (socket) => this.ctx.getWebSocketAutoResponseTimestamp(socket)?.getTime() ?? 0,
      ended: (ended) => this.remove(ended),
      probing: (probing) => {
        this.probing.add(probing);
        this.reconsider();
      },
      settled: (settled) => {
        if (this.switching || settled.engine.probing || !this.probing.delete(settled)) return;
        this.reconsider();
      },
      behind: (behind, deadline) => {
        this.behind.add(behind);
        behind.slowLookAt = Math.min(behind.slowLookAt ?? Infinity, deadline);
        this.settings.wake(behind.slowLookAt);
      },
    });
    this.byWs.set(ws, direct);
    this.bySid.set(direct.engine.sid, direct);
    return direct;
  }

  private remove(direct: DirectConnection<App>): void {
    this.byWs.delete(direct.ws);
    if (this.byWs.size === 0) this.lastPingAt = undefined;
    this.bySid.delete(direct.engine.sid);
    this.pending.delete(direct);
    this.behind.delete(direct);
    if (this.probing.delete(direct)) this.reconsider();
  }

  /**
   * The runtime answers pongs itself only while no socket has a probe out. Turning that off,
   * the pongs it answered so far are taken in first (each socket has at most one ping out
   * then); from the switch on, every pong is delivered as a message.
   */
  private reconsider(): void {
    if (this.switching) return;
    const on = this.probing.size === 0;
    if (on === this.autoResponding) return;
    this.switching = true;
    try {
      this.autoResponding = on;
      this.ctx.setWebSocketAutoResponse(on ? this.pongPair : undefined);
      if (!on) for (const direct of [...this.byWs.values()]) direct.look();
    } finally {
      this.switching = false;
    }
    // Looking may have closed sockets (pongs nobody asked for), and with them the last probe.
    this.reconsider();
  }
}
