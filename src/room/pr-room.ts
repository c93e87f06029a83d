/**
 * PrRoom: one Durable Object per pull request, named `pr:<id>`. Its members are gateway
 * links (one per client connection that joined) and direct client sockets; both are
 * hibernatable WebSockets whose attachments say who they are, so the room sleeps between
 * messages and loses nothing. This class is the object's entry points and their wiring:
 * - Membership (membership.ts): who is in, commands, the log, presence, typing, fan-out;
 * - LinkHost (link-host.ts): gateway links;
 * - DirectHost (direct-host.ts): client sockets of the direct path;
 * - the one alarm (alarm.ts) for every deadline;
 * - the meter (util/meter.ts): every entry point is one billed request, logged as `room_stats`.
 */
import { DurableObject } from "cloudflare:workers";
import { configOf, type Config } from "../chat/config.js";
import { publicPullRequestId, type DeleteAck, type HistoryAck, type Refusal } from "../chat/events.js";
import type { PublishRequest, PublishResult, RoomInfo } from "../chat/room-api.js";
import type { TokenBucket } from "../chat/token-bucket.js";
import { webhooksOn } from "../chat/webhooks.js";
import { log } from "../util/log.js";
import { ObjectMeter } from "../util/meter.js";
import { Alarm, earliest } from "./alarm.js";
import { Connections } from "./connections.js";
import { DirectHost } from "./direct-host.js";
import { LinkHost } from "./link-host.js";
import { RoomLog } from "./log.js";
import { Membership } from "./membership.js";
import { WebhookOutbox } from "./outbox.js";
import { Presence } from "./presence.js";
import { RoomTimers } from "./timers.js";
import { Typing } from "./typing.js";

/** Close codes the platform reports when no close frame came (abnormal, TLS): never answered. 1005 is a frame without a code. */
const NO_CLOSE_FRAME = new Set([1006, 1015]);

export class PrRoom extends DurableObject<Env> {
  private readonly config: Config;
  private readonly key: string;
  private readonly log: RoomLog;
  private readonly connections: Connections;
  private readonly presence: Presence;
  private readonly typing = new Typing();
  /** Typing budgets per user, in memory: many tabs of one user type as one user. */
  private readonly typingBudgets = new Map<string, TokenBucket>();
  private readonly alarms: Alarm;
  /** Webhook events, written with what caused them and sent to the queue after the commit. */
  private readonly outbox: WebhookOutbox;
  private readonly timers: RoomTimers;
  private readonly membership: Membership;
  private readonly links: LinkHost;
  private readonly directs: DirectHost;
  /** Billed units since the last `room_stats` line. */
  readonly meter: ObjectMeter;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const config = (this.config = configOf(env));
    this.key = (ctx.id.name ?? "").replace(/^pr:/, "");
    const meter = (this.meter = new ObjectMeter("room_stats", () => ({
      pr: this.key,
      sockets: this.ctx.getWebSockets().length,
      seq: this.log.headSeq,
    })));
    const sql = meter.sql(ctx.storage.sql);
    const historyMs = config.HISTORY_RETENTION_DAYS * 86_400_000;
    this.log = new RoomLog(sql, { windowMs: config.RECOVERY_WINDOW_MS, maxEntries: config.RECOVERY_MAX_MESSAGES, historyMs });
    this.connections = new Connections(sql, config.RECOVERY_WINDOW_MS);
    this.presence = new Presence(sql, config.PRESENCE_GRACE_MS);
    this.alarms = new Alarm(ctx.storage, meter);
    this.timers = new RoomTimers(this.alarms, meter);
    const sync = () => ctx.storage.sync();
    const queue = webhooksOn(env) ? env.WEBHOOK_QUEUE : undefined;
    this.outbox = new WebhookOutbox(sql, { key: this.key, queue, sync, wake: (at) => this.alarms.wake(at), meter });
    const { key, log, connections, presence, typing, typingBudgets, alarms, outbox } = this;
    const abort = (reason: string) => ctx.abort(reason);
    const state = { key, pullRequestId: publicPullRequestId(key), config, log, connections, presence, typing, typingBudgets, alarms, outbox, meter, sync, abort };
    this.membership = new Membership(state, (now) => this.scheduleNext(now));
    this.links = new LinkHost(ctx, this.membership, () => this.log.headSeq);
    this.directs = new DirectHost(ctx, key, config, this.membership, connections, this.timers, alarms);

    for (const ws of ctx.getWebSockets()) {
      const participant = this.directs.restore(ws) ?? this.links.restore(ws);
      if (participant) this.membership.restore(participant);
    }
    ctx.blockConcurrencyWhile(async () => {
      await this.alarms.load();
      this.reconcile();
      // Events a crash or an eviction left unsent: again, with their ids (receivers deduplicate).
      void this.outbox.resend();
    });
  }

  /** A gateway link (`/link?…`) or a client's own socket (`/socket.io/…`, the direct path). */
  override fetch(request: Request): Promise<Response> {
    return this.meter.request("fetches", () => this.accept(request));
  }

  private accept(request: Request): Response {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    if (!this.key) return new Response("rooms are reached by name (pr:<id>)", { status: 400 });
    const url = new URL(request.url);
    if (url.pathname === "/link") return this.links.accept(url);
    if (url.pathname.startsWith("/socket.io/")) {
      const response = this.directs.accept(request);
      this.scheduleNext(Date.now());
      return response;
    }
    return new Response("not found", { status: 404 });
  }

  override webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    return this.meter.request("wsMessages", () => {
      const direct = this.directs.sessions.get(ws);
      if (direct) return direct.engine.receive(data);
      this.links.message(ws, data);
    });
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.gone(ws, "transport close", code);
    // The room may sleep from here on: what it counted is written down before its memory goes.
    if (this.membership.size === 0 && this.directs.sessions.size === 0) this.meter.report("empty");
    // Every close frame is answered, as a socket.io server does: with its code, or none for
    // a frame that had none (1005), so the client's close completes at once. A close no frame
    // carried (1006, 1015) has nobody to answer.
    if (NO_CLOSE_FRAME.has(code)) return;
    try {
      if (code === 1005) ws.close();
      else ws.close(code, reason);
    } catch {
      // Already closed (the runtime answers close frames itself).
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.gone(ws, "transport error");
  }

  override async alarm(): Promise<void> {
    await this.meter.request("alarms", () => {
      this.alarms.fired();
      const now = Date.now();
      this.directs.sessions.heartbeat(now);
      this.membership.expire(now);
      this.log.prune(now);
      this.connections.prune(now);
      this.timers.runDue(now);
      this.outbox.retryDue(now);
      this.scheduleNext(now);
    });
    // Most wakes of an idle room are its alarm: a line per alarm keeps hibernation from losing counts.
    this.meter.report("alarm");
  }

  // ---- RPC for the HTTP API ---------------------------------------------------------------

  /** Publishes a message as `username` (a backend's token subject), as a member's send would. */
  publish(request: PublishRequest): Promise<PublishResult> {
    return this.meter.request(
      "rpcs",
      () => new Promise<PublishResult>((resolve) => this.membership.post(request.username, request.message, request.clientMessageId, resolve)),
    );
  }

  /** A page of the room's history (HISTORY_RETENTION_DAYS), as `get-pr-room-history` answers it. */
  history(before: number | undefined, limit: number): Promise<HistoryAck | Refusal> {
    return this.meter.request("rpcs", () => this.membership.discussion.history(before, limit));
  }

  /** Deletes a message as a moderator (the HTTP API's `moderate` scope): any author's; `actor` is the token's subject. */
  moderate(id: string, actor: string): Promise<DeleteAck | Refusal> {
    return this.meter.request("rpcs", () => this.membership.discussion.remove(actor, id, true));
  }

  /** Fault injection (FAULT_INJECTION=on only): "restart" resets the object as a crash would. */
  async fault(kind: "restart"): Promise<void> {
    if (this.config.FAULT_INJECTION !== "on") throw new Error("fault injection is off");
    log("fault", { pr: this.key, kind });
    this.ctx.abort(`fault injection: ${kind}`);
  }

  /** Who is here now. */
  info(): Promise<RoomInfo> {
    return this.meter.request("rpcs", () => {
      const users = this.presence.list();
      return { pullRequestId: publicPullRequestId(this.key), members: users.length, users };
    });
  }

  // ---- wiring -------------------------------------------------------------------------------

  /** A socket closed: a direct connection's session ends; a link's member left, or went (recoverably). */
  private gone(ws: WebSocket, reason: "transport close" | "transport error", code?: number): void {
    if (this.directs.sessions.lost(ws, reason, code)) return;
    this.links.closed(ws, code);
  }

  /**
   * Whenever the object starts (after a restart, or waking from hibernation once its sockets
   * are rebuilt): what storage says is here but no socket is, has gone.
   */
  private reconcile(): void {
    const now = Date.now();
    this.presence.reconcile(now);
    this.connections.reconcile(new Set([...this.membership.socketIds(), ...this.directs.socketIds()]), now);
    this.scheduleNext(now);
  }

  private scheduleNext(now: number): void {
    this.alarms.wake(
      earliest(
        this.directs.sessions.nextHeartbeatAt(now),
        this.typing.nextExpiryAt(),
        this.presence.nextExpiryAt(),
        this.log.nextPruneAt(now),
        this.connections.nextPruneAt(),
        this.timers.next(),
        this.outbox.nextRetryAt(),
      ),
    );
  }
}
