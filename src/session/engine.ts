/**
 * One Engine.IO v4 session, whatever carries it: a WebSocket held by the Worker, a
 * hibernatable WebSocket held by a room, or HTTP long-polling held by a session object.
 * It owns the open packet, the payload limit, packet dispatch, the slow-reader cap and
 * close. The host supplies the transport and the heartbeat. Its durable part is
 * `EngineState`, plain data a room keeps in the socket's attachment.
 */
import { log } from "../log.js";
import { decodeEnginePacket, encodeOpen, EnginePacketType, exceedsPayload } from "../protocol/engineio.js";
import { Backlog, frameBytes } from "./backlog.js";
import { CloseCode, type DisconnectReason, type EngineOptions, type Frame } from "./types.js";

export interface EngineState {
  /** The Engine.IO session id. */
  sid: string;
  openedAt: number;
}

/** Where frames go: a WebSocket, or a polling queue. */
export interface EngineTransport {
  send(frame: Frame): void;
  close(code: number, reason: string): void;
}

/** What rides on the session: Socket.IO, or the protocol suite's echo. */
export interface EngineApplication {
  message(data: string | ArrayBuffer): void;
  closed(reason: DisconnectReason): void;
  /** The application's ids for log lines (Socket.IO: `socketId`), so the session's lines join its own. */
  logIds?(): Record<string, string | undefined>;
}

/** Who pings and judges pongs: timers in a Worker or a polling object; a room's alarm otherwise. */
export interface Heartbeat {
  /** Starts the beat; `lastPingAt` (ms since the epoch) keeps the phase of a session that moved here. */
  start(session: EngineSession, lastPingAt?: number): void;
  pong(): void;
  stop(): void;
  /** A ping went out (heartbeat or probe). */
  pinged?(): void;
  /** For hosts that never see pongs (answered by the runtime): true when one came since the last ping. */
  ponged?(): boolean;
}

/**
 * Pongs nobody asked for that a session forgives (a ping in flight across a transport switch).
 * More would let a client fake proof of reading, and socket.io-client never sends them.
 */
const MAX_UNSOLICITED_PONGS = 3;

export class EngineSession {
  closed = false;
  app: EngineApplication | undefined;
  private readonly backlog: Backlog;
  private unsolicitedPongs = 0;

  constructor(
    readonly state: EngineState,
    private readonly transport: EngineTransport,
    readonly options: Pick<EngineOptions, "pingInterval" | "pingTimeout" | "maxPayload" | "maxBacklog" | "connectTimeout">,
    private readonly heartbeat?: Heartbeat,
  ) {
    this.backlog = new Backlog(options.maxBacklog);
  }

  get sid(): string {
    return this.state.sid;
  }

  /** Sends the open packet and starts the heartbeat. */
  open(upgrades: string[] = []): void {
    const { pingInterval, pingTimeout, maxPayload } = this.options;
    this.send(encodeOpen({ sid: this.sid, upgrades, pingInterval, pingTimeout, maxPayload }));
    this.heartbeat?.start(this);
  }

  /**
   * Resumes a session opened elsewhere (a room after hibernation, or the WebSocket after an
   * upgrade). `lastPingAt` is when the client was last pinged there: the next ping comes
   * pingInterval after it, as the client's own ping timer expects.
   */
  resume(lastPingAt?: number): void {
    this.heartbeat?.start(this, lastPingAt);
  }

  /**
   * The session moved to another host (a polling session upgraded to WebSocket): it ends
   * here without a word to the application (which handed itself over) or to the client.
   */
  moved(): void {
    if (this.closed) return;
    this.closed = true;
    this.heartbeat?.stop();
    log("moved", { sid: this.sid, ...this.app?.logIds?.() });
  }

  /** Handles one frame from the client. */
  receive(frame: Frame): void {
    if (this.closed) return;
    if (exceedsPayload(frame, this.options.maxPayload)) {
      return this.close("payload too large", CloseCode.tooBig, "payload too large");
    }
    const decoded = decodeEnginePacket(frame);
    if (!decoded.ok) return this.protocolError(decoded.reason);
    const packet = decoded.value;
    switch (packet.type) {
      case "pong":
        if (!this.backlog.ponged() && ++this.unsolicitedPongs > MAX_UNSOLICITED_PONGS) {
          return this.protocolError("pongs nobody asked for");
        }
        return this.heartbeat?.pong();
      case "message":
        return this.app?.message(packet.data);
      case "close":
        return this.close("transport close");
      case "noop":
        return;
      default:
        // The v4 server pings; a client ping, open or upgrade is out of place on an open session.
        return this.protocolError(`unexpected ${packet.type} packet`);
    }
  }

  /**
   * Sends one frame, counting it against the slow-reader cap: `bytes` is its size when the
   * caller knows it already, and 0 leaves the frame out of the count (a recovery's replay).
   */
  send(frame: Frame, bytes?: number): void {
    if (this.closed) return;
    try {
      this.transport.send(frame);
    } catch {
      return this.close("transport error");
    }
    if (this.options.maxBacklog === 0) return;
    let verdict = this.backlog.sentBytes(bytes ?? frameBytes(frame));
    if (verdict === "ok") return;
    // While behind: a host that cannot see pongs (the runtime answers them) looks for one now.
    if (this.heartbeat?.ponged?.()) {
      this.backlog.ponged();
      verdict = this.backlog.verdict();
    }
    if (verdict === "probe") this.ping();
    else if (verdict === "cut") this.cut();
  }

  /** Sends a ping whose pong proves the client has read everything sent before it. */
  ping(): void {
    if (this.closed) return;
    try {
      this.transport.send(EnginePacketType.ping);
    } catch {
      return this.close("transport error");
    }
    this.backlog.sentBytes(1);
    this.backlog.pinged();
    this.heartbeat?.pinged?.();
  }

  /** The runtime answered a pong for us (a room's auto-response): the oldest ping is answered. */
  pongSeen(): void {
    this.backlog.ponged();
  }

  /** Unanswered pings, heartbeat and probes alike. */
  get outstandingPings(): number {
    return this.backlog.outstandingPings;
  }

  /** Closes the session and its transport; the application hears `reason` first. Idempotent. */
  close(reason: DisconnectReason, code: number = CloseCode.normal, text = ""): void {
    if (!this.end(reason, code)) return;
    try {
      this.transport.close(code, text || reason);
    } catch {
      // Already closed by the peer: nothing left to tell it.
    }
  }

  /**
   * The transport is already gone (the peer closed it, or it broke): ends the session
   * without answering. The runtime answers close frames itself, and a close that no
   * frame carried (1005, 1006, 1015) must not be answered at all.
   */
  lost(reason: "transport close" | "transport error", code?: number): void {
    this.end(reason, code);
  }

  private end(reason: DisconnectReason, code: number | undefined): boolean {
    if (this.closed) return false;
    const ids = this.app?.logIds?.();
    this.app?.closed(reason);
    this.closed = true;
    this.heartbeat?.stop();
    log("disconnect", { sid: this.sid, ...ids, reason, code, seconds: Math.round((Date.now() - this.state.openedAt) / 1000) });
    return true;
  }

  protocolError(reason: string): void {
    log("protocol_error", { sid: this.sid, ...this.app?.logIds?.(), reason: reason.slice(0, 200) });
    this.close("parse error", CloseCode.protocolError, "protocol error");
  }

  private cut(): void {
    log("slow_reader", { sid: this.sid, ...this.app?.logIds?.(), owed: this.backlog.owed });
    this.close("slow reader", CloseCode.tryAgainLater, "slow reader: reconnect");
  }
}

/** Pings every pingInterval; closes when a pong does not come within pingTimeout. One chain per session. */
export class TimerHeartbeat implements Heartbeat {
  private session: EngineSession | undefined;
  private pingTimer: ReturnType<typeof setTimeout> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  /** When a ping (heartbeat or probe) last went out; 0 before the first. */
  lastPingAt = 0;

  start(session: EngineSession, lastPingAt?: number): void {
    this.session = session;
    if (lastPingAt === undefined) return this.schedule();
    this.lastPingAt = lastPingAt;
    // The client's ping timer runs from the last ping it got, or from the open packet.
    const due = (lastPingAt || session.state.openedAt) + session.options.pingInterval;
    this.schedule(Math.max(0, Math.min(session.options.pingInterval, due - Date.now())));
  }

  pinged(): void {
    this.lastPingAt = Date.now();
  }

  pong(): void {
    // A pong with no heartbeat ping waiting answered a probe: the chain goes on as it was.
    if (this.pongTimer === null) return;
    clearTimeout(this.pongTimer);
    this.pongTimer = null;
    this.schedule();
  }

  stop(): void {
    clearTimeout(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.pingTimer = this.pongTimer = null;
  }

  private schedule(delay = this.session!.options.pingInterval): void {
    const session = this.session!;
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      this.pingTimer = null;
      session.ping();
      this.pongTimer = setTimeout(() => session.close("ping timeout"), session.options.pingTimeout);
    }, delay);
  }

  /** Whether the pong for the last heartbeat ping is overdue (its timer may not have run yet). */
  overdue(now: number): boolean {
    return this.pongTimer !== null && now - this.lastPingAt >= this.session!.options.pingTimeout;
  }
}
