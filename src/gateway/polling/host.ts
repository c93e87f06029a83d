/**
 * One Engine.IO session over HTTP long-polling, held by the Durable Object named after
 * its sid (`eio:<sid>`): a Worker invocation ends with its request, so the session's
 * state lives here between requests. The session is the shared EngineSession with a
 * polling transport: outgoing frames queue until a GET takes them (one `\x1e`-joined
 * payload), POSTs carry the client's packets, and TimerHeartbeat pings (this object
 * cannot hibernate anyway: it holds pending GETs and the application's outgoing sockets).
 *
 * It behaves as engine.io's polling transport does (lib/transports/polling.ts): a held
 * GET is answered as soon as something is queued (the heartbeat's ping included); a
 * second GET while one is held closes the session (the held one gets `1`, the second a
 * bare 400); a client `1` answers the held GET with `6`; a POST over maxPayload gets 413.
 *
 * The upgrade to WebSocket is driven by the Worker that accepted the WebSocket: it begins
 * the upgrade, pauses polling on `2probe` (GETs get `6` so the client can switch), and on
 * `5` asks for the hand-over: the application settles and says what to carry, every frame
 * still queued goes with it, and the session ends here for good.
 */
import { log } from "../../util/log.js";
import { decodePayload, encodePayload, EnginePacketType } from "../../protocol/engineio.js";
import type { EngineServerApp, HostedApp, SessionHandOver } from "../../session/app.js";
import { frameBytes } from "../../session/backlog.js";
import { EngineSession, TimerHeartbeat, type EngineTransport } from "../../session/engine.js";
import { HandshakeError, handshakeOf, refuse } from "../../session/handshake.js";
import type { EngineOptions, Frame, Handshake } from "../../session/types.js";
import { readAtMost } from "../../util/read-capped.js";

/** A held GET is answered `6` after this long with nothing to send (proxies cut idle HTTP responses at ~100 s). */
export const MAX_POLL_WAIT_MS = 50_000;
/** The most one GET response carries; the rest waits for the next GET. */
export const MAX_POLL_RESPONSE_BYTES = 1 << 20;
/** How long a client may take from opening the WebSocket to sending `5` (engine.io's upgradeTimeout). */
export const UPGRADE_TIMEOUT_MS = 10_000;
/** How long the hand-over waits for work in flight (CONNECTs, commands sent to rooms) to be answered. */
export const HANDOVER_WAIT_MS = 2_000;
/**
 * A GET that arrives while polling is paused is answered `6` after this long, as engine.io's
 * 100 ms noop check does, unless the upgrade completes first (then it gets the 400 any GET
 * after the upgrade gets). engine.io-client sends no such GET; the protocol suite does.
 */
export const PAUSED_POLL_MS = 100;
/** After a client's `1` overtook its own GET, how long that GET may still come for its `6`. */
export const CLOSED_NOOP_MS = 1_000;

/** ok: the upgrade may go on; unknown: no such session; refused: this session offers no upgrade; busy: upgrading or upgraded already. */
export type UpgradeVerdict = "ok" | "unknown" | "refused" | "busy";

/**
 * none: not opened; open: polling; upgrading: a WebSocket is probing; paused: polling answers
 * `6` until the upgrade completes or fails; moving: handing over; moved: on the WebSocket now;
 * closed: gone.
 */
type Phase = "none" | "open" | "upgrading" | "paused" | "moving" | "moved" | "closed";

const NOOP = EnginePacketType.noop;
const CLOSE = EnginePacketType.close;

export class PollingHost {
  private phase: Phase = "none";
  private engine: EngineSession | undefined;
  private app: HostedApp | undefined;
  private handshake: Handshake | undefined;
  private readonly heartbeat = new TimerHeartbeat();
  private queue: Frame[] = [];
  /** The GET waiting for something to send. */
  private held: { answer: (response: Response) => void; timer: ReturnType<typeof setTimeout> } | undefined;
  private posting = false;
  private flushing = false;
  private upgradeTimer: ReturnType<typeof setTimeout> | null = null;
  /** When the client closed with no GET held: the GET it had out may still come, for its `6`. */
  private closedAt: number | undefined;

  constructor(
    readonly sid: string,
    private readonly options: EngineOptions,
    private readonly server: EngineServerApp,
    /** The session opened here, and later ended or moved: the object cannot hibernate in between. */
    private readonly lifetime: { opened(): void; ended(): void } = { opened() {}, ended() {} },
  ) {}

  /** A client request the Worker forwarded: the handshake (no sid), a long-poll GET, or a POST. */
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (!url.searchParams.has("sid")) return this.open(request, url);
    // As engine.io: a polling request for a session on the WebSocket now is a transport mismatch.
    if (this.phase === "moved") return refuse(HandshakeError.BAD_REQUEST);
    const engine = this.engine;
    if (this.closedAt !== undefined && request.method === "GET" && Date.now() - this.closedAt < CLOSED_NOOP_MS) {
      this.closedAt = undefined;
      return payloadResponse(NOOP);
    }
    if (!engine || engine.closed) return refuse(HandshakeError.UNKNOWN_SID);
    engine.traffic.requests++;
    // A poll after the pong was due finds the session over, even if its timer has not run yet.
    if (request.method === "GET" && this.heartbeat.overdue(Date.now())) {
      engine.close("ping timeout");
      return refuse(HandshakeError.UNKNOWN_SID);
    }
    if (request.method === "GET") return this.poll(engine);
    if (request.method === "POST") return this.post(engine, request);
    return refuse(HandshakeError.BAD_REQUEST);
  }

  // ---- the upgrade, driven by the Worker that holds the WebSocket ---------------------------

  /** A WebSocket with this sid arrived: may it probe? */
  beginUpgrade(): UpgradeVerdict {
    if (this.phase === "moved") return "busy";
    if (!this.engine || this.engine.closed) return "unknown";
    if (!this.server.upgrades.includes("websocket")) return "refused";
    if (this.phase !== "open") return "busy";
    this.phase = "upgrading";
    this.upgradeTimer = setTimeout(() => this.abortUpgrade(), UPGRADE_TIMEOUT_MS);
    return "ok";
  }

  /** The probe succeeded (`2probe` answered): GETs end with `6` (within PAUSED_POLL_MS) so the client can switch. */
  pause(): void {
    if (this.phase !== "upgrading") return;
    this.phase = "paused";
    const held = this.held;
    if (!held) return;
    clearTimeout(held.timer);
    held.timer = setTimeout(() => this.answerHeld(NOOP), PAUSED_POLL_MS);
  }

  /** The WebSocket went away before `5`, or timed out: polling goes on. */
  abortUpgrade(): void {
    if (this.phase !== "upgrading" && this.phase !== "paused") return;
    this.clearUpgradeTimer();
    this.phase = "open";
  }

  /**
   * The client sent `5` on the WebSocket: the session leaves this object. The application
   * settles (bounded) and says what to carry; the frames still queued go too, and the
   * session ends here without a word to anyone. Undefined when it cannot move: then it
   * ends here as a lost transport (the client reconnects, and recovers).
   */
  async handOver(): Promise<SessionHandOver | undefined> {
    const engine = this.engine;
    if (!engine || engine.closed || (this.phase !== "upgrading" && this.phase !== "paused")) return undefined;
    this.clearUpgradeTimer();
    this.phase = "moving";
    // The new host keeps the beat; a pong for a ping sent here will come over there.
    this.heartbeat.stop();
    const snapshot = await this.app!.handOver(Date.now() + HANDOVER_WAIT_MS);
    if (engine.closed) return undefined;
    if (snapshot === undefined) {
      this.phase = "closed";
      this.lifetime.ended();
      engine.lost("transport error");
      return undefined;
    }
    const queued = this.queue;
    this.queue = [];
    this.phase = "moved";
    this.lifetime.ended();
    engine.moved();
    this.answerHeld(refuse(HandshakeError.BAD_REQUEST));
    return {
      engine: engine.state,
      handshake: this.handshake!,
      lastPingAt: this.heartbeat.lastPingAt,
      pings: engine.unansweredPings,
      queued,
      app: snapshot,
    };
  }

  // ---- requests --------------------------------------------------------------------------

  private open(request: Request, url: URL): Response {
    // Each object serves one sid, handed out once by the Worker.
    if (this.phase !== "none") return refuse(HandshakeError.BAD_REQUEST);
    this.handshake = handshakeOf(request, url);
    const engine = new EngineSession({ sid: this.sid, openedAt: Date.now() }, this.transport(), this.options, this.heartbeat);
    this.engine = engine;
    engine.traffic.requests = 1;
    this.app = this.server.open(engine, this.handshake);
    this.phase = "open";
    this.lifetime.opened();
    engine.open([...this.server.upgrades]);
    log("connect", { sid: this.sid, origin: this.handshake.origin, transport: "polling" });
    return payloadResponse(this.take());
  }

  private poll(engine: EngineSession): Promise<Response> | Response {
    if (this.held) {
      // Two GETs at once (engine.io: "overlap from client"): the session ends, the held GET gets `1`.
      engine.close("transport error");
      return new Response(null, { status: 400 });
    }
    const paused = this.phase === "paused" || this.phase === "moving";
    if (!paused && this.queue.length > 0) return payloadResponse(this.take());
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.answerHeld(NOOP), paused ? PAUSED_POLL_MS : MAX_POLL_WAIT_MS);
      this.held = { answer: resolve, timer };
    });
  }

  private async post(engine: EngineSession, request: Request): Promise<Response> {
    if (this.phase === "moving") return refuse(HandshakeError.BAD_REQUEST);
    if (this.posting || request.headers.get("Content-Type") === "application/octet-stream") {
      // Two POSTs at once, or binary content (EIO 3 only): engine.io closes the session.
      engine.close("transport error");
      return new Response(null, { status: 400 });
    }
    // A declared length over the limit was refused by the Worker, unread; this reads at most the limit.
    this.posting = true;
    let body: string | undefined;
    try {
      body = await readText(request, this.options.maxPayload);
    } finally {
      this.posting = false;
    }
    if (body === undefined) return new Response(null, { status: 413 });
    if (engine.closed || this.phase === "moved") return refuse(HandshakeError.UNKNOWN_SID);
    if (body.length > 0) {
      const frames = decodePayload(body);
      if (!frames.ok) {
        engine.protocolError(frames.reason);
        return refuse(HandshakeError.BAD_REQUEST);
      }
      for (const frame of frames.value) {
        if (engine.closed) break;
        if (frame === CLOSE) {
          this.clientClosed(engine);
          break;
        }
        engine.receive(frame);
      }
    }
    // text/html, as engine.io (some user agents offer text/plain as a download).
    return new Response("ok", { headers: { "Content-Type": "text/html", "Cache-Control": "no-store" } });
  }

  /**
   * The client's `1`: the held GET ends with `6`, and the session with "transport close".
   * engine.io-client sends it while its long-poll GET is out; when the POST overtakes that
   * GET, the GET still gets its `6` (within CLOSED_NOOP_MS) rather than an error.
   */
  private clientClosed(engine: EngineSession): void {
    if (this.held) this.answerHeld(NOOP);
    else this.closedAt = Date.now();
    this.ended();
    engine.lost("transport close");
  }

  // ---- the transport -------------------------------------------------------------------------

  private transport(): EngineTransport {
    return {
      send: (frame) => {
        this.queue.push(frame);
        this.scheduleFlush();
      },
      // Closed from our side: the held GET, if any, gets what is queued and `1`.
      close: () => {
        if (this.held) this.answerHeld(this.take(CLOSE));
        this.ended();
      },
    };
  }

  /** Frames sent in one turn go out in one response. */
  private scheduleFlush(): void {
    if (!this.held || this.flushing) return;
    this.flushing = true;
    queueMicrotask(() => {
      this.flushing = false;
      if (this.held && this.queue.length > 0 && (this.phase === "open" || this.phase === "upgrading")) this.answerHeld(this.take());
    });
  }

  /** Takes queued frames as one payload, up to MAX_POLL_RESPONSE_BYTES (at least one frame), with `last` appended. */
  private take(last?: string): string {
    let bytes = 0;
    let count = 0;
    while (count < this.queue.length) {
      const size = frameBytes(this.queue[count]!) * (typeof this.queue[count] === "string" ? 1 : 4 / 3);
      if (count > 0 && bytes + size > MAX_POLL_RESPONSE_BYTES) break;
      bytes += size;
      count++;
    }
    const frames: Frame[] = this.queue.splice(0, count);
    if (last !== undefined) frames.push(last);
    return encodePayload(frames);
  }

  private answerHeld(answer: string | Response): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    clearTimeout(held.timer);
    held.answer(typeof answer === "string" ? payloadResponse(answer) : answer);
  }

  private ended(): void {
    if (this.phase !== "closed") this.lifetime.ended();
    this.phase = "closed";
    this.queue = [];
    this.clearUpgradeTimer();
  }

  private clearUpgradeTimer(): void {
    clearTimeout(this.upgradeTimer);
    this.upgradeTimer = null;
  }
}

function payloadResponse(body: string): Response {
  return new Response(body, { headers: { "Content-Type": "text/plain; charset=UTF-8", "Cache-Control": "no-store" } });
}

/** Reads a body as UTF-8 text, or undefined as soon as it passes `limit` bytes (never buffering more). */
async function readText(request: Request, limit: number): Promise<string | undefined> {
  const bytes = await readAtMost(request.body, limit);
  return bytes && new TextDecoder().decode(bytes);
}
