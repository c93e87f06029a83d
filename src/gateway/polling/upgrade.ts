/**
 * The upgrade of a polling session to WebSocket, on the Worker (the gateway path): the
 * WebSocket is accepted here and the session continues here, never pinned to the polling
 * object, which then goes away.
 *
 *   client                     Worker (this)                          PollingObject eio:<sid>
 *   WS ?sid=…  ─────────────►  beginUpgrade() ──────────────────────►  upgrading (else 400 / 101+close)
 *   2probe     ─────────────►  pause() ─────────────────────────────►  GETs answered 6 from now on
 *              ◄─────────────  3probe
 *   5          ─────────────►  handOver() ──────────────────────────►  app settles (≤ 2 s), snapshot,
 *                              ◄──────────── state, snapshot, queued    queued frames; session ends there
 *              ◄─────────────  queued frames, then the app takes over (rooms replay after the
 *                              positions in the snapshot), then live traffic
 *
 * Frames the client sends after `5` wait until the take-over is done, then go in order.
 */
import { log } from "../../util/log.js";
import { exceedsPayload } from "../../protocol/engineio.js";
import { frameBytes } from "../../session/backlog.js";
import type { EngineServerApp, SessionHandOver } from "../../session/app.js";
import { EngineSession, TimerHeartbeat } from "../../session/engine.js";
import { HandshakeError, refuse } from "../../session/handshake.js";
import { CloseCode, type DisconnectReason, type EngineOptions, type Frame } from "../../session/types.js";
import { UPGRADE_TIMEOUT_MS } from "./host.js";
import type { PollingObject } from "./object.js";

export type PollingStub = DurableObjectStub<PollingObject>;

/** How long a second WebSocket for a session that is upgrading (or upgraded) stays open before it is closed. */
export const DUPLICATE_CLOSE_DELAY_MS = 200;

/**
 * What the client may send while its session moves (after `5`, before the take-over is done):
 * frames, and their bytes. A client keeps to a few; past these the WebSocket closes 1013 and
 * the client reconnects (and recovers). Each frame is also held to maxPayload on arrival.
 */
export const MAX_WAITING_FRAMES = 256;
export const MAX_WAITING_BYTES = 1_048_576;

/** Answers a WebSocket handshake that names a polling session (`sid`): 101 and the upgrade, or the reference's refusal. */
export async function upgradeFromPolling(stub: PollingStub, app: EngineServerApp, options: EngineOptions, sid: string): Promise<Response> {
  let verdict: Awaited<ReturnType<PollingObject["beginUpgrade"]>>;
  try {
    verdict = await stub.beginUpgrade();
  } catch {
    verdict = "unknown";
  }
  if (verdict === "unknown") return refuse(HandshakeError.UNKNOWN_SID);
  if (verdict === "refused") return refuse(HandshakeError.BAD_REQUEST);
  const { 0: client, 1: server } = new WebSocketPair();
  server.accept();
  server.binaryType = "arraybuffer";
  // Upgrading or upgraded already: engine.io accepts the WebSocket and closes it. Here a
  // little later: frames already on their way on the first WebSocket (its 3probe) cross the
  // dev proxy and the Worker and should not be overtaken by this close.
  if (verdict === "busy") setTimeout(() => server.close(), DUPLICATE_CLOSE_DELAY_MS);
  else new Upgrade(stub, app, options, sid, server);
  return new Response(null, { status: 101, webSocket: client });
}

class Upgrade {
  private state: "probe" | "probed" | "moving" | "live" | "failed" = "probe";
  private engine: EngineSession | undefined;
  /** Client frames that came after `5`, while the session moves, and their bytes. */
  private readonly waiting: Frame[] = [];
  private waitingBytes = 0;
  /** Set when the client sent past those bounds: how the session closes once it is here. */
  private overflow: { reason: DisconnectReason; code: number; text: string } | undefined;
  /** Set when the client closed the WebSocket before the session was live here. */
  private closedWith: number | undefined;
  private readonly timer: ReturnType<typeof setTimeout>;

  constructor(
    private readonly stub: PollingStub,
    private readonly app: EngineServerApp,
    private readonly options: EngineOptions,
    private readonly sid: string,
    private readonly ws: WebSocket,
  ) {
    ws.addEventListener("message", (event) => this.message(event.data as Frame));
    ws.addEventListener("close", (event) => this.closed(event.code));
    ws.addEventListener("error", () => this.closed(1006));
    this.timer = setTimeout(() => this.fail("upgrade timeout"), UPGRADE_TIMEOUT_MS);
  }

  private message(frame: Frame): void {
    switch (this.state) {
      case "live":
        return this.engine!.receive(frame);
      case "moving":
        return this.hold(frame);
      case "probe":
        if (frame !== "2probe") return this.fail("expected 2probe");
        this.state = "probed";
        this.ws.send("3probe");
        // Calls on one stub arrive in order: the pause is in effect before handOver. A GET
        // that reaches the object before the pause is held, and answered `6` by it.
        this.stub.pause().catch(() => undefined);
        return;
      case "probed":
        if (frame !== "5") return this.fail("expected 5");
        clearTimeout(this.timer);
        this.state = "moving";
        void this.move();
        return;
    }
  }

  /**
   * Keeps a frame for the session once it is here, within the payload limit and the buffer's
   * bounds. Past them nothing more is kept, and the session closes as soon as it is here (it
   * cannot close earlier: it is between hosts), after the frames that came before.
   */
  private hold(frame: Frame): void {
    if (this.overflow) return;
    if (exceedsPayload(frame, this.options.maxPayload)) {
      this.overflow = { reason: "payload too large", code: CloseCode.tooBig, text: "payload too large" };
      return;
    }
    this.waitingBytes += frameBytes(frame);
    if (this.waiting.length >= MAX_WAITING_FRAMES || this.waitingBytes > MAX_WAITING_BYTES) {
      this.overflow = { reason: "transport error", code: CloseCode.tryAgainLater, text: "too much sent during the upgrade" };
      return;
    }
    this.waiting.push(frame);
  }

  private async move(): Promise<void> {
    // The snapshot is plain data (structured clone); RPC typing cannot see through `unknown`.
    const handed = (await this.stub.handOver().catch(() => undefined)) as SessionHandOver | undefined;
    if (!handed) return this.fail("hand-over failed", CloseCode.tryAgainLater);
    const engine = new EngineSession(handed.engine, { send: (frame) => this.ws.send(frame), close: (code, reason) => this.ws.close(code, reason) }, this.options, new TimerHeartbeat());
    engine.traffic.requests = 1;
    // Pings the client has not answered yet (some may still be in `queued`): their pongs come here.
    for (const at of handed.pings ?? []) engine.restorePing(at);
    // What the polling session had queued goes first; the application's frames come after.
    for (const frame of handed.queued) engine.send(frame);
    try {
      await this.app.takeOver(engine, handed.handshake, handed.app);
    } catch (error) {
      log("handler_error", { sid: this.sid, where: "take-over", error: String(error) });
      engine.close("transport error", CloseCode.tryAgainLater, "upgrade failed");
      return;
    }
    this.engine = engine;
    this.state = "live";
    engine.resume(handed.lastPingAt);
    log("upgrade", { sid: this.sid, queued: handed.queued.length });
    for (const frame of this.waiting.splice(0)) engine.receive(frame);
    if (this.closedWith !== undefined) engine.lost("transport close", this.closedWith);
    else if (this.overflow) {
      log("upgrade_failed", { sid: this.sid, why: this.overflow.text });
      engine.close(this.overflow.reason, this.overflow.code, this.overflow.text);
    }
  }

  private closed(code: number): void {
    if (this.state === "live") return this.engine!.lost(code === 1006 ? "transport error" : "transport close", code);
    if (this.closedWith !== undefined) return;
    this.closedWith = code;
    if (this.state === "moving") return; // the session ends once it is here
    this.fail("closed before the upgrade");
  }

  /** The upgrade did not happen: polling goes on (before `5`), and this WebSocket closes. */
  private fail(why: string, code: number = CloseCode.normal): void {
    if (this.state === "live" || this.state === "failed") return;
    const before5 = this.state !== "moving";
    this.state = "failed";
    clearTimeout(this.timer);
    if (before5) this.stub.abortUpgrade().catch(() => undefined);
    log("upgrade_failed", { sid: this.sid, why });
    try {
      this.ws.close(code, why);
    } catch {
      // Closed already.
    }
  }
}
