/**
 * The room's webhook outbox: how a room emits an event durably without waiting for anyone.
 *
 * `emit` writes the event as a row of the room's SQLite in the caller's turn, so it commits
 * together with whatever caused it (the message in the log, the presence change): an event
 * is never sent for a write that did not commit, and never lost for one that did. Once that
 * commit is durable (`sync`), the rows of the turn go to the Cloudflare Queue in one
 * `sendBatch`, and are deleted when the queue has taken them. The Worker's queue consumer
 * delivers them (gateway/webhooks.ts); the room never talks to the backend, so a slow or dead
 * backend never slows it.
 *
 * A send that fails leaves its rows; the room's alarm sends them again (1 s, doubling to
 * 5 min), and so does every start of the object (`resend`), for rows a crash left between
 * commit and send, or between send and delete. Each row keeps the `webhook-id` its caller
 * gave it, so every send of one event, and every delivery attempt the queue makes of it,
 * carries the same id: a receiver that deduplicates by `webhook-id` sees each event once.
 * (The room's ids: `evt_<pullRequestId>_<seq>` for events of its log, and
 * `evt_<pullRequestId>_room_<n>` for arrivals and departures, `n` from `serial()`.)
 *
 * Bounded: at most MAX_WAITING rows wait (only a queue that refuses sends for long makes any
 * wait at all). Past that, each new event drops the oldest waiting one, with a
 * `webhook_dropped` log line naming it: the newest events are the ones worth delivering late.
 *
 * Off when WEBHOOK_URL is unset (no queue is passed): no table, no rows, no sends.
 *
 * Cost, in the units `room_stats` counts: each event is two SQLite rows written (its insert, its delete;
 * counted by the metered `Sql`), plus one per `serial()`; and one Queues message (billed a
 * write, a read and a delete per 64 KB, and a read per retry), tallied as `webhooksQueued` in
 * `room_stats`. A turn's events share one `sendBatch` call.
 */
import { WEBHOOK_ID, webhookBody, type WebhookBody, type WebhookDataOf, type WebhookMessage, type WebhookType } from "../chat/webhooks.js";
import { log } from "../util/log.js";
import type { ObjectMeter, Sql } from "../util/meter.js";

/** Most rows waiting to be sent; past it the oldest is dropped. */
export const MAX_WAITING = 10_000;
/**
 * Largest event, as JSON: a Queues message holds 128 KB, metadata included. Only a
 * MAX_MESSAGE_LENGTH far above the default (4,000) can make a message event this big; such an
 * event is dropped with a log line.
 */
export const MAX_EVENT_BYTES = 120_000;
/** One sendBatch takes at most 100 messages and 256 KB. */
const BATCH_MESSAGES = 100;
const BATCH_BYTES = 240_000;
/** After a failed send, the next try: 1 s, doubling, at most 5 min apart. */
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 300_000;

export interface OutboxOptions {
  /** The room's key, for log lines. */
  key: string;
  /** The producer binding; undefined turns the outbox off (WEBHOOK_URL unset). */
  queue: Pick<Queue<WebhookMessage>, "sendBatch"> | undefined;
  /** Resolves once every storage write so far is durable. */
  sync(): Promise<void>;
  /** Makes sure the room's alarm fires by `at` (it then calls `retryDue`). */
  wake(at: number): void;
  meter: ObjectMeter;
  /** Most rows waiting (MAX_WAITING; smaller in tests). */
  maxWaiting?: number;
}

interface Row {
  row: number;
  message: WebhookMessage;
  /** Its JSON size, for the batch limits. */
  bytes: number;
}

export class WebhookOutbox {
  private readonly sql: Sql | undefined;
  private readonly maxWaiting: number;
  /** Rows in the table. */
  private count = 0;
  /** The last rowid given out. */
  private lastRow = 0;
  /** Rows of this turn, waiting for their commit. */
  private fresh: Row[] = [];
  /** Rows not to be sent by anyone else: waiting for their commit, or on their way to the queue. */
  private readonly busy = new Set<number>();
  /** When the alarm sends again after a failure; undefined while nothing failed. */
  private retryAt: number | undefined;
  private failures = 0;
  private resending = false;

  constructor(
    sql: Sql,
    private readonly options: OutboxOptions,
  ) {
    this.maxWaiting = options.maxWaiting ?? MAX_WAITING;
    if (!options.queue) return;
    this.sql = sql;
    sql.exec("CREATE TABLE IF NOT EXISTS webhook_outbox (row INTEGER PRIMARY KEY, id TEXT NOT NULL, message TEXT NOT NULL)");
    sql.exec("CREATE TABLE IF NOT EXISTS webhook_serials (name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    const { n, last } = sql.exec<{ n: number; last: number | null }>("SELECT COUNT(*) AS n, MAX(row) AS last FROM webhook_outbox").one();
    this.count = n;
    this.lastRow = last ?? 0;
  }

  /** Whether webhooks are on. */
  get enabled(): boolean {
    return this.sql !== undefined;
  }

  /** Events written and not yet taken by the queue. */
  get waiting(): number {
    return this.count;
  }

  /**
   * Emits an event that happened at `at`: written now (in the caller's turn), sent once that
   * write has committed. `id` is its `webhook-id` and must be unique to this event: letters,
   * digits, `_`, `-`. Nothing happens when webhooks are off. Never throws into the caller (a
   * broadcast must not fail for a webhook): what goes wrong is logged.
   */
  emit<T extends WebhookType>(id: string, type: T, data: WebhookDataOf[T], at = Date.now()): void {
    const sql = this.sql;
    if (!sql) return;
    const { key } = this.options;
    if (!WEBHOOK_ID.test(id)) return log("webhook_dropped", { pr: key, id, type, why: "bad_id" });
    const message: WebhookMessage = { id, body: webhookBody(type, data, at) as WebhookBody };
    const json = JSON.stringify(message);
    const bytes = utf8Bytes(json);
    if (bytes > MAX_EVENT_BYTES) return log("webhook_dropped", { pr: key, id, type, why: "too_large", bytes });
    const row = this.lastRow + 1;
    try {
      sql.exec("INSERT INTO webhook_outbox (row, id, message) VALUES (?, ?, ?)", row, id, json);
    } catch (error) {
      return log("handler_error", { pr: key, where: "webhook outbox", id, error: String(error) });
    }
    this.lastRow = row;
    this.count++;
    if (this.count > this.maxWaiting) this.dropOldest();
    this.busy.add(row);
    this.fresh.push({ row, message, bytes });
    // The first event of a turn waits for the commit; the others of the turn go with it.
    if (this.fresh.length === 1) {
      this.options.sync().then(
        () => this.sendFresh(),
        // The room restarts (its log writer aborts it); what committed is resent at its start.
        () => undefined,
      );
    }
  }

  /**
   * The next number of a counter kept with the outbox (for room events' ids), written in the
   * caller's turn; never the same twice, also across restarts. 0 when webhooks are off.
   */
  serial(name = "room"): number {
    const sql = this.sql;
    if (!sql) return 0;
    return sql
      .exec<{ value: number }>("INSERT INTO webhook_serials (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value", name)
      .one().value;
  }

  /**
   * Sends every row still waiting that nobody else is sending, with the ids they were written
   * with: at the object's start (rows a crash or an eviction left, all committed before it),
   * and from the alarm after a failed send.
   */
  async resend(): Promise<void> {
    const sql = this.sql;
    if (!sql || this.resending || this.count === 0) return;
    this.resending = true;
    try {
      let after = 0;
      for (;;) {
        const candidates = sql
          .exec<{ row: number; message: string }>("SELECT row, message FROM webhook_outbox WHERE row > ? ORDER BY row LIMIT ?", after, BATCH_MESSAGES)
          .toArray();
        if (candidates.length === 0) return;
        after = candidates[candidates.length - 1]!.row;
        const rows: Row[] = [];
        let bytes = 0;
        for (const { row, message } of candidates) {
          if (this.busy.has(row)) continue;
          const size = utf8Bytes(message);
          if (rows.length > 0 && bytes + size > BATCH_BYTES) {
            after = rows[rows.length - 1]!.row;
            break;
          }
          rows.push({ row, message: JSON.parse(message) as WebhookMessage, bytes: size });
          bytes += size;
        }
        if (rows.length > 0 && !(await this.send(rows, "resend"))) return;
      }
    } finally {
      this.resending = false;
    }
  }

  /** The alarm: sends again if a failed send's retry is due. */
  retryDue(now: number): void {
    if (this.retryAt === undefined || this.retryAt > now) return;
    this.retryAt = undefined;
    void this.resend();
  }

  /** When the alarm must fire for a retry, if one is pending. */
  nextRetryAt(): number | undefined {
    return this.retryAt;
  }

  /** The rows of a turn whose commit is durable: to the queue, at most a batch's worth a call. */
  private async sendFresh(): Promise<void> {
    const rows = this.fresh;
    this.fresh = [];
    for (let start = 0; start < rows.length; ) {
      let end = start;
      let bytes = 0;
      while (end < rows.length && end - start < BATCH_MESSAGES && (end === start || bytes + rows[end]!.bytes <= BATCH_BYTES)) {
        bytes += rows[end]!.bytes;
        end++;
      }
      const batch = rows.slice(start, end);
      start = end;
      if (!(await this.send(batch, "emit"))) {
        // The rest stays for the alarm's retry too.
        for (const { row } of rows.slice(start)) this.busy.delete(row);
        return;
      }
    }
  }

  /** One sendBatch, then the rows go; false when the queue refused (rows kept, a retry scheduled). */
  private async send(rows: Row[], why: "emit" | "resend"): Promise<boolean> {
    const { queue, meter } = this.options;
    for (const { row } of rows) this.busy.add(row);
    try {
      await queue!.sendBatch(rows.map(({ message }) => ({ body: message, contentType: "json" as const })));
    } catch (error) {
      for (const { row } of rows) this.busy.delete(row);
      this.failed(rows.length, error, why);
      return false;
    }
    for (let i = 0; i < rows.length; i++) meter.tally("webhooksQueued");
    this.failures = 0;
    const deleted = this.sql!.exec("DELETE FROM webhook_outbox WHERE row IN (SELECT value FROM json_each(?))", JSON.stringify(rows.map(({ row }) => row)));
    deleted.toArray();
    this.count = Math.max(0, this.count - deleted.rowsWritten);
    for (const { row } of rows) this.busy.delete(row);
    return true;
  }

  private failed(events: number, error: unknown, why: "emit" | "resend"): void {
    const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** this.failures++);
    const at = Date.now() + delay;
    log("webhook_send_failed", { pr: this.options.key, events, waiting: this.count, why, retryInMs: delay, error: String(error) });
    if (this.retryAt === undefined || at < this.retryAt) this.retryAt = at;
    this.options.wake(this.retryAt);
  }

  /** The outbox is full: the oldest waiting event goes, with a line that names it. */
  private dropOldest(): void {
    const dropped = this.sql!.exec<{ row: number; id: string }>("DELETE FROM webhook_outbox WHERE row = (SELECT MIN(row) FROM webhook_outbox) RETURNING row, id").toArray()[0];
    if (!dropped) return;
    this.count--;
    log("webhook_dropped", { pr: this.options.key, id: dropped.id, why: "outbox_full", waiting: this.count });
  }
}

const encoder = new TextEncoder();

function utf8Bytes(text: string): number {
  return encoder.encode(text).length;
}
