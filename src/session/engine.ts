/**
 * One Engine.IO v4 session, whatever carries it: a WebSocket held by the Worker, a
 * hibernatable WebSocket held by a room, or HTTP long-polling held by a session object.
 * It owns the open packet, the payload limit, packet dispatch, the slow-reader cap and
 * close. The host supplies the transport and the heartbeat. Its durable part is
 * `EngineState`, plain data a room keeps in the socket's attachment.
 */
import { log } from "../util/log.js";
import { decodeEnginePacket, encodeOpen, EnginePacketType, exceedsPayload } from "../protocol/engineio.js";
import { Backlog, DEFAULT_SLOW_READER_TIMEOUT, frameBytes, type Ping } from "./backlog.js";
import { CloseCode, type DisconnectReason, type EngineOptions, type Frame } from "./types.js";

export interface EngineState {
  /** The Engine.IO session id. */
  sid: string;
  openedAt: number;
  /**
   * Pongs nobody asked for so far (absent: none). Kept with the state, so a host that
   * sleeps (a room hibernating between its alarm rounds) still counts a slow flood.
   */
  strayPongs?: number;
  /** When a host whose heartbeat sleeps between rounds (a room's alarm) last pinged it. */
  pingedAt?: number;
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

/**
 * Who pings and judges pongs: timers in a Worker or a polling object; a room's alarm
 * otherwise. The session numbers every ping (heartbeat or probe) and matches each pong to
 * the oldest unanswered one, as the client answers them in order; the heartbeat hears
 * which ping each pong answered.
 */
export interface Heartbeat {
  /** Starts the beat; `lastPingAt` (ms since the epoch) keeps the phase of a session that moved here. */
  start(session: EngineSession, lastPingAt?: number): void;
  /** A pong answered `ping`. */
  pong(ping: Ping): void;
  stop(): void;
  /** A ping went out (heartbeat or probe). */
  pinged?(ping: Ping): void;
  /**
   * A probe is about to go out. A host whose runtime answers pongs itself (a room's
   * auto-response) must make sure this probe's pong reaches the session as a message.
   */
  probing?(): void;
  /**
   * The client owes more than the slow-reader cap: unless it reads more first, it is cut at
   * `deadline` (ms since the epoch). The host calls `check()` then, even if nothing more is
   * sent; told again whenever the deadline moves.
   */
  behind?(deadline: number): void;
  /** A pong nobody asked for was counted (in `state.strayPongs`): a host that sleeps saves the state. */
  stray?(): void;
}

/**
 * Pongs nobody asked for that a session forgives (a ping in flight across a transport switch).
 * More would let a client fake proof of reading, and socket.io-client never sends them.
 */
const MAX_UNSOLICITED_PONGS = 3;

/** What a session carried: the units a Worker holding it is billed by (requests; CPU follows the frames). */
export interface Traffic {
  /** HTTP requests that served it (the WebSocket upgrade, or each polling request). */
  requests: number;
  framesIn: number;
  framesOut: number;
}

export class EngineSession {
  closed = false;
  app: EngineApplication | undefined;
  readonly traffic: Traffic = { requests: 0, framesIn: 0, framesOut: 0 };
  private readonly backlog: Backlog;
  /** The slow-reader deadline the heartbeat was last told of. */
  private toldDeadline: number | undefined;

  constructor(
    readonly state: EngineState,
    private readonly transport: EngineTransport,
    readonly options: Pick<EngineOptions, "pingInterval" | "pingTimeout" | "maxPayload" | "maxBacklog" | "connectTimeout" | "slowReaderTimeout">,
    private readonly heartbeat?: Heartbeat,
  ) {
    this.backlog = new Backlog(options.maxBacklog, options.slowReaderTimeout ?? DEFAULT_SLOW_READER_TIMEOUT);
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
    this.traffic.framesIn++;
    if (exceedsPayload(frame, this.options.maxPayload)) {
      return this.close("payload too large", CloseCode.tooBig, "payload too large");
    }
    const decoded = decodeEnginePacket(frame);
    if (!decoded.ok) return this.protocolError(decoded.reason);
    const packet = decoded.value;
    switch (packet.type) {
      case "pong":
        return this.answered(this.backlog.ponged(Date.now()));
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
   * Sends one frame, counting it against the slow-reader cap (every frame counts, a
   * recovery's replay too): `bytes` is its UTF-8 size when the caller knows it already.
   */
  send(frame: Frame, bytes?: number): void {
    if (this.closed) return;
    try {
      this.transport.send(frame);
    } catch {
      return this.close("transport error");
    }
    this.traffic.framesOut++;
    if (this.options.maxBacklog === 0) return;
    this.follow(this.backlog.sentBytes(bytes ?? frameBytes(frame), Date.now()));
  }

  /**
   * Sends a ping whose pong proves the client has read everything sent before it: a
   * heartbeat ping (the heartbeat judges its pong), or a probe (the slow-reader cap does).
   */
  ping(heartbeat = false): Ping | undefined {
    if (this.closed) return undefined;
    if (!heartbeat) this.heartbeat?.probing?.();
    if (this.closed) return undefined;
    try {
      this.transport.send(EnginePacketType.ping);
    } catch {
      this.close("transport error");
      return undefined;
    }
    this.traffic.framesOut++;
    const ping = this.backlog.pinged(Date.now(), heartbeat);
    this.heartbeat?.pinged?.(ping);
    return ping;
  }

  /**
   * The runtime answered a pong for us at `at` (a room's auto-response, seen by its
   * timestamp): it answers the oldest unanswered ping if that went out before it, within
   * pingTimeout. Any other was asked for by nobody: none was out, or it came too late to
   * answer one (a client that answers in time never sends it; one that pongs unasked shows
   * up this way when only the last pong of a round is seen).
   */
  pongSeen(at: number): void {
    if (this.closed) return;
    const oldest = this.backlog.outstanding[0];
    const answers = oldest !== undefined && oldest.at <= at && at - oldest.at <= this.options.pingTimeout;
    this.answered(answers ? this.backlog.ponged(Date.now()) : undefined);
  }

  /**
   * The heartbeat's look at the slow-reader cap, as of `at` (when the look was due), with
   * nothing sent: a client over the cap that made no progress for the timeout is cut, and
   * one over it with no probe out gets one. Hosts call it in an event of its own (a timer,
   * an alarm), never while sending: see Backlog.verdict.
   */
  check(at = Date.now()): void {
    if (this.closed || this.options.maxBacklog === 0) return;
    this.follow(this.backlog.verdict(at));
  }

  /**
   * A ping that went out at `at` before the host slept, or on the host the session moved from,
   * and is still unanswered: its pong is matched to it as if it had gone out here.
   */
  restorePing(at: number): Ping {
    return this.backlog.pinged(at, true);
  }

  /** When each unanswered ping went out, oldest first: what a session that moves carries (restorePing there). */
  get unansweredPings(): number[] {
    return this.backlog.outstanding.map((ping) => ping.at);
  }

  /** Whether a probe is unanswered. */
  get probing(): boolean {
    return this.backlog.probing;
  }

  /** When the client is cut unless it reads more first; undefined while it owes no more than the cap. */
  get slowReaderDeadline(): number | undefined {
    return this.backlog.deadline;
  }

  private follow(verdict: "ok" | "probe" | "cut"): void {
    if (verdict === "cut") return this.cut();
    if (verdict === "probe") this.ping();
    const deadline = this.backlog.deadline;
    if (deadline !== this.toldDeadline) {
      this.toldDeadline = deadline;
      if (deadline !== undefined) this.heartbeat?.behind?.(deadline);
    }
  }

  /** A pong came (the one that answers `ping`, or one nobody asked for). */
  private answered(ping: Ping | undefined): void {
    if (ping === undefined) {
      const strays = (this.state.strayPongs ?? 0) + 1;
      this.state.strayPongs = strays;
      if (strays > MAX_UNSOLICITED_PONGS) return this.protocolError("pongs nobody asked for");
      this.heartbeat?.stray?.();
      return;
    }
    this.heartbeat?.pong(ping);
    if (this.closed || this.options.maxBacklog === 0) return;
    // Over the cap, a probe stays out so that progress keeps showing.
    this.follow(this.backlog.probeDue() ? "probe" : "ok");
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
    const why = this.backlog.cutReason === "ceiling" ? "too far behind" : "stopped reading";
    log("slow_reader", { sid: this.sid, ...this.app?.logIds?.(), owed: this.backlog.owed, why });
    this.close("slow reader", CloseCode.tryAgainLater, "slow reader: reconnect");
  }
}

/**
 * A heartbeat look that may close a connection (the slow-reader deadline, the ping timeout)
 * and runs this much later than it was due is taken again LOOK_AGAIN_MS later, before it
 * closes anything. It ran late because the runtime was busy (forwarding a burst, say), and
 * then the client's pongs may be held back in the runtime just like the look was: measured
 * under wrangler dev, a gateway forwarding a 6 MB burst held back both its timers and the
 * pongs of its readers for up to 7 s, then ran the timer first. A look on time is fair.
 */
export const LATE_LOOK_MS = 250;
export const LOOK_AGAIN_MS = 50;

/**
 * Pings every pingInterval; closes when the pong to that ping does not come within
 * pingTimeout (a probe's pong, which answers an older ping, does not count). While the
 * client owes more than the slow-reader cap, a timer looks at it at its deadline, so one
 * that stopped reading is cut even when nothing more is sent to it. One chain per session.
 */
export class TimerHeartbeat implements Heartbeat {
  private session: EngineSession | undefined;
  private pingTimer: ReturnType<typeof setTimeout> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private slowTimer: ReturnType<typeof setTimeout> | null = null;
  /** The heartbeat ping waiting for its pong. */
  private awaiting: Ping | undefined;
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

  pinged(ping: Ping): void {
    this.lastPingAt = ping.at;
  }

  pong(ping: Ping): void {
    // Pongs answer pings in order: one for an older ping (a probe) says nothing of the heartbeat's.
    if (this.awaiting === undefined || ping.serial < this.awaiting.serial) return;
    this.awaiting = undefined;
    clearTimeout(this.pongTimer);
    this.pongTimer = null;
    this.schedule();
  }

  behind(deadline: number): void {
    // An earlier look stays: it finds the client reading (and looks again later) or not.
    if (this.slowTimer === null) this.lookAt(deadline);
  }

  stop(): void {
    clearTimeout(this.pingTimer);
    clearTimeout(this.pongTimer);
    clearTimeout(this.slowTimer);
    this.pingTimer = this.pongTimer = this.slowTimer = null;
  }

  private schedule(delay = this.session!.options.pingInterval): void {
    const session = this.session!;
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      this.pingTimer = null;
      const ping = session.ping(true);
      if (ping === undefined) return;
      this.awaiting = ping;
      this.onTime(ping.at + session.options.pingTimeout, (timer) => (this.pongTimer = timer), () => session.close("ping timeout"));
    }, delay);
  }

  private lookAt(deadline: number): void {
    const session = this.session!;
    this.onTime(deadline, (timer) => (this.slowTimer = timer), () => {
      // As of the deadline: a pong handled since (late, the runtime being busy) counts.
      session.check(Math.min(deadline, Date.now()));
      // Still over the cap: the client made progress meanwhile, so its deadline moved.
      const next = session.slowReaderDeadline;
      if (!session.closed && next !== undefined && this.slowTimer === null) this.lookAt(next);
    });
  }

  /** Runs `look` at `due`, or, if the timer runs late, LOOK_AGAIN_MS after it ran, until it runs on time. */
  private onTime(due: number, keep: (timer: ReturnType<typeof setTimeout> | null) => void, look: () => void): void {
    keep(
      setTimeout(() => {
        const now = Date.now();
        if (now - due > LATE_LOOK_MS) return this.onTime(now + LOOK_AGAIN_MS, keep, look);
        keep(null);
        look();
      }, Math.max(0, due - Date.now())),
    );
  }

  /** Whether the pong for the last heartbeat ping is overdue (its timer may not have run yet). */
  overdue(now: number): boolean {
    return this.awaiting !== undefined && now - this.awaiting.at >= this.session!.options.pingTimeout;
  }
}
