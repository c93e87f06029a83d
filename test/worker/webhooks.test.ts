/**
 * Webhooks inside workerd. The room's outbox (src/room/outbox.ts) on a room's real SQLite:
 * rows are written in the caller's turn, go to the queue only after the commit (a `sync`
 * the test holds back), leave once the queue took them, survive a failed send and a restart
 * (sent again with the same ids), and stay bounded. The consumer (src/gateway/webhooks.ts):
 * what it signs verifies with `standardwebhooks`' own `verify`, 2xx acks, anything else
 * retries with backoff, dead letters are logged and let go. And the two settings.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext, createMessageBatch, getQueueResult, runInDurableObject } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { logEventId, roomEventId, webhookProblems, webhookSettings, webhooksOn, type WebhookMessage } from "../../src/chat/webhooks.js";
import { deliverWebhooks, handleWebhookQueue, retryAfterSeconds, retryDelaySeconds } from "../../src/gateway/webhooks.js";
import { WebhookOutbox, type OutboxOptions } from "../../src/room/outbox.js";
import type { PrRoom } from "../../src/room/pr-room.js";
import { ObjectMeter, type Sql } from "../../src/util/meter.js";
import { until } from "../shared/until.js";

let nextPr = 49_000;
const freshPr = () => nextPr++;
const room = (pr: number) => env.PR_ROOM.getByName(`pr:${pr}`);

/** A Standard Webhooks secret: "whsec_" and the base64 of 32 bytes. */
const SECRET = `whsec_${btoa(String.fromCharCode(...Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 256)))}`;
const HOOKS = { WEBHOOK_URL: "https://backend.example/hooks", WEBHOOK_SECRET: SECRET };

afterEach(() => {
  vi.restoreAllMocks();
});

/** A stand-in for the queue binding: records every batch; refuses while `down`; a send can be held. */
class FakeQueue {
  readonly batches: WebhookMessage[][] = [];
  down = false;
  hold: Promise<void> | undefined;

  async sendBatch(messages: Iterable<MessageSendRequest<WebhookMessage>>): Promise<QueueSendBatchResponse> {
    const batch = Array.from(messages, (message) => {
      expect(message.contentType).toBe("json");
      return structuredClone(message.body);
    });
    await this.hold;
    if (this.down) throw new Error("queue unavailable");
    this.batches.push(batch);
    return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
  }

  get ids(): string[] {
    return this.batches.flat().map((message) => message.id);
  }
}

/** A promise and its resolve, for holding the commit (or a send) back. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

interface Harness {
  sql: Sql;
  meter: ObjectMeter;
  queue: FakeQueue;
  wakes: number[];
  outbox(options?: Partial<OutboxOptions>): WebhookOutbox;
  rows(): Array<{ id: string; message: string }>;
  tables(): string[];
}

/** Runs `test` inside a fresh room's object, with an outbox (or several: a restart) over its SQLite. */
function inRoom<T>(test: (h: Harness, state: DurableObjectState) => Promise<T>): Promise<T> {
  const pr = freshPr();
  return runInDurableObject(room(pr), async (_: PrRoom, state) => {
    const meter = new ObjectMeter("room_stats", () => ({ pr }));
    const sql = meter.sql(state.storage.sql);
    const queue = new FakeQueue();
    const wakes: number[] = [];
    const h: Harness = {
      sql,
      meter,
      queue,
      wakes,
      outbox: (options = {}) => new WebhookOutbox(sql, { key: String(pr), queue, sync: () => state.storage.sync(), wake: (at) => wakes.push(at), meter, ...options }),
      rows: () => state.storage.sql.exec<{ id: string; message: string }>("SELECT id, message FROM webhook_outbox ORDER BY row").toArray(),
      tables: () => state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'webhook%' ORDER BY name").toArray().map((row) => row.name),
    };
    return test(h, state);
  });
}

const created = (pr: number, seq: number, message = `message ${seq}`) =>
  ({ pullRequestId: pr, id: `id-${seq}`, seq, username: "ann", message, mentions: [] as string[], sentAt: 1_700_000_000_000 + seq });

describe("the outbox", () => {
  it("writes the row in the caller's turn, sends only after the commit, and deletes it once the queue took it", () =>
    inRoom(async (h) => {
      const commit = gate();
      const outbox = h.outbox({ sync: () => commit.promise });
      const setup = h.meter.total.sqlRowsWritten;
      outbox.emit(logEventId("7", 1), "message.created", created(7, 1), Date.UTC(2026, 0, 2, 3, 4, 5));
      outbox.emit(logEventId("7", 2), "message.created", created(7, 2));
      // In this very turn: both rows are there, nothing has gone to the queue.
      expect(h.rows().map((row) => row.id)).toEqual(["evt_7_1", "evt_7_2"]);
      expect(outbox.waiting).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(h.queue.batches).toEqual([]);

      // The commit is durable: the turn's events go in one batch, then their rows go.
      const send = gate();
      h.queue.hold = send.promise;
      commit.open();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(h.rows()).toHaveLength(2);
      send.open();
      await until(() => h.queue.batches.length === 1 && h.rows().length === 0, 2000, "the batch sent and its rows deleted");
      expect(outbox.waiting).toBe(0);
      expect(h.queue.batches[0]).toEqual([
        { id: "evt_7_1", body: { type: "message.created", timestamp: "2026-01-02T03:04:05.000Z", data: created(7, 1) } },
        { id: "evt_7_2", body: { type: "message.created", timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), data: created(7, 2) } },
      ]);
      // Two rows written per event (insert, delete); one queue message each.
      expect(h.meter.total.sqlRowsWritten - setup).toBe(4);
    }));

  it("with the real commit: sent, deleted, counted in the meter", () =>
    inRoom(async (h) => {
      const lines: string[] = [];
      vi.spyOn(console, "log").mockImplementation((line: string) => void lines.push(line));
      const outbox = h.outbox();
      h.meter.report("setup");
      outbox.emit("evt_8_room_1", "room.occupied", { pullRequestId: 8, username: "ann" });
      await until(() => h.queue.ids.length === 1 && h.rows().length === 0, 2000, "sent");
      h.meter.report("test");
      const stats = lines.map((line) => JSON.parse(line)).find((line) => line.evt === "room_stats" && line.why === "test");
      expect(stats).toMatchObject({ webhooksQueued: 1, sqlRowsWritten: 2 });
    }));

  it("keeps what the queue refused, retries from the alarm with the same ids, and a restart sends the rest again", () =>
    inRoom(async (h) => {
      const lines: string[] = [];
      vi.spyOn(console, "log").mockImplementation((line: string) => void lines.push(line));
      h.queue.down = true;
      const outbox = h.outbox();
      for (let seq = 1; seq <= 3; seq++) outbox.emit(logEventId("9", seq), "message.created", created(9, seq));
      await until(() => outbox.nextRetryAt() !== undefined, 2000, "a retry scheduled");
      expect(h.rows().map((row) => row.id)).toEqual(["evt_9_1", "evt_9_2", "evt_9_3"]);
      expect(h.wakes).toEqual([outbox.nextRetryAt()]);
      expect(lines.map((line) => JSON.parse(line))).toContainEqual(expect.objectContaining({ evt: "webhook_send_failed", pr: expect.any(String), events: 3, why: "emit" }));

      // Not due yet: nothing. Due, queue still down: kept, the next retry later.
      const first = outbox.nextRetryAt()!;
      outbox.retryDue(first - 1);
      expect(outbox.nextRetryAt()).toBe(first);
      outbox.retryDue(first);
      await until(() => outbox.nextRetryAt() !== undefined, 2000, "another retry scheduled");
      expect(outbox.nextRetryAt()! - Date.now()).toBeGreaterThan(1000);

      // A restart (a new outbox over the same storage) sends every row, with the ids it had.
      h.queue.down = false;
      const again = h.outbox();
      expect(again.waiting).toBe(3);
      await again.resend();
      expect(h.queue.ids).toEqual(["evt_9_1", "evt_9_2", "evt_9_3"]);
      expect(h.queue.batches.flat().map((message) => message.body.data)).toEqual([created(9, 1), created(9, 2), created(9, 3)]);
      expect(h.rows()).toEqual([]);
      expect(again.waiting).toBe(0);
    }));

  it("a restart does not send rows of a turn whose commit has not happened yet", () =>
    inRoom(async (h) => {
      const commit = gate();
      const outbox = h.outbox({ sync: () => commit.promise });
      outbox.emit("evt_10_1", "message.created", created(10, 1));
      // The same instance's resend (from its alarm) leaves the row to the commit's send.
      await outbox.resend();
      expect(h.queue.batches).toEqual([]);
      commit.open();
      await until(() => h.queue.ids.length === 1, 2000, "sent after the commit");
      await outbox.resend();
      expect(h.queue.ids).toEqual(["evt_10_1"]);
    }));

  it("is bounded: past the cap, the oldest waiting event is dropped, with a line that names it", () =>
    inRoom(async (h) => {
      const lines: string[] = [];
      vi.spyOn(console, "log").mockImplementation((line: string) => void lines.push(line));
      h.queue.down = true;
      const outbox = h.outbox({ maxWaiting: 3 });
      for (let seq = 1; seq <= 5; seq++) outbox.emit(logEventId("11", seq), "message.created", created(11, seq));
      expect(h.rows().map((row) => row.id)).toEqual(["evt_11_3", "evt_11_4", "evt_11_5"]);
      expect(outbox.waiting).toBe(3);
      const dropped = lines.map((line) => JSON.parse(line)).filter((line) => line.evt === "webhook_dropped");
      expect(dropped).toEqual([
        { evt: "webhook_dropped", pr: expect.any(String), id: "evt_11_1", why: "outbox_full", waiting: 3 },
        { evt: "webhook_dropped", pr: expect.any(String), id: "evt_11_2", why: "outbox_full", waiting: 3 },
      ]);
      await until(() => outbox.nextRetryAt() !== undefined, 2000, "the failed send");
      h.queue.down = false;
      await outbox.resend();
      expect(h.queue.ids).toEqual(["evt_11_3", "evt_11_4", "evt_11_5"]);
    }));

  it("sends a turn's events in batches the queue accepts (at most 100 messages each)", () =>
    inRoom(async (h) => {
      const outbox = h.outbox();
      for (let seq = 1; seq <= 150; seq++) outbox.emit(logEventId("12", seq), "message.created", created(12, seq));
      await until(() => h.queue.ids.length === 150, 5000, "all sent");
      expect(h.queue.batches.map((batch) => batch.length)).toEqual([100, 50]);
      expect(h.rows()).toEqual([]);
    }));

  it("is off without a queue (WEBHOOK_URL unset): no table, no rows, no sends", () =>
    inRoom(async (h) => {
      const outbox = h.outbox({ queue: undefined });
      outbox.emit("evt_13_1", "message.created", created(13, 1));
      expect(outbox.enabled).toBe(false);
      expect(outbox.serial()).toBe(0);
      expect(h.tables()).toEqual([]);
      expect(h.meter.total.sqlRowsWritten).toBe(0);
    }));

  it("counts room events durably: the serial goes on across restarts", () =>
    inRoom(async (h) => {
      expect([h.outbox().serial(), h.outbox().serial()]).toEqual([1, 2]);
      expect(h.outbox().serial()).toBe(3);
      expect(roomEventId("14", 3)).toBe("evt_14_room_3");
    }));

  it("refuses an id a signature could be confused by, and an event too big for a queue message", () =>
    inRoom(async (h) => {
      const lines: string[] = [];
      vi.spyOn(console, "log").mockImplementation((line: string) => void lines.push(line));
      const outbox = h.outbox();
      outbox.emit("evt.15.1", "message.created", created(15, 1));
      outbox.emit("evt_15_2", "message.created", created(15, 2, "x".repeat(130_000)));
      expect(h.rows()).toEqual([]);
      expect(lines.map((line) => JSON.parse(line))).toEqual([
        expect.objectContaining({ evt: "webhook_dropped", id: "evt.15.1", why: "bad_id" }),
        expect.objectContaining({ evt: "webhook_dropped", id: "evt_15_2", why: "too_large" }),
      ]);
    }));

  it("a room with the defaults (WEBHOOK_URL unset) creates no webhook table", async () => {
    const pr = freshPr();
    await room(pr).publish({ username: "ci-bot", message: "hello" });
    const tables = await runInDurableObject(room(pr), (_: PrRoom, state) =>
      state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE name LIKE 'webhook%'").toArray(),
    );
    expect(tables).toEqual([]);
  });
});

// ---- the consumer ----------------------------------------------------------------------------

const message = (id: string, seq: number, attempts = 1) => ({
  id: `queue-${id}-${attempts}`,
  timestamp: new Date(),
  attempts,
  body: { id, body: { type: "message.created", timestamp: "2026-01-02T03:04:05.000Z", data: created(16, seq, `hi @bob #${seq}`) } } as WebhookMessage,
});

/** The delay each message of `batch` is retried with (the plugin's getQueueResult leaves delays out). */
function retryDelays(batch: MessageBatch<WebhookMessage>): Map<string, number | undefined> {
  const delays = new Map<string, number | undefined>();
  for (const message of batch.messages) {
    const retry = message.retry.bind(message);
    vi.spyOn(message, "retry").mockImplementation((options) => {
      delays.set(message.id, options?.delaySeconds);
      retry(options);
    });
  }
  return delays;
}

interface Sent {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** A fetch that records each request and answers with `answer(request)`. */
function receiver(answer: (sent: Sent) => Response | Promise<Response>): { sent: Sent[]; fetcher: typeof fetch } {
  const sent: Sent[] = [];
  const fetcher = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const one = { url: request.url, headers: Object.fromEntries(request.headers), body: await request.text() };
    sent.push(one);
    return answer(one);
  }) as typeof fetch;
  return { sent, fetcher };
}

describe("the consumer", () => {
  it("POSTs each event as JSON with the three Standard Webhooks headers, which standardwebhooks verifies", async () => {
    vi.spyOn(console, "log").mockImplementation(() => undefined);
    const { sent, fetcher } = receiver(() => new Response(null, { status: 204 }));
    const batch = createMessageBatch<WebhookMessage>("pr-rooms-webhooks", [message("evt_16_1", 1), message("evt_16_2", 2)]);
    const ctx = createExecutionContext();
    await deliverWebhooks(batch, HOOKS, fetcher);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks.sort()).toEqual(["queue-evt_16_1-1", "queue-evt_16_2-1"]);
    expect(result.retryMessages).toEqual([]);

    expect(sent).toHaveLength(2);
    const wh = new Webhook(SECRET);
    for (const [index, request] of sent.entries()) {
      expect(request.url).toBe(HOOKS.WEBHOOK_URL);
      expect(request.headers["content-type"]).toBe("application/json");
      expect(request.headers["webhook-id"]).toBe(`evt_16_${index + 1}`);
      expect(Math.abs(Number(request.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(5);
      expect(request.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
      expect(wh.verify(request.body, request.headers)).toEqual({
        type: "message.created",
        timestamp: "2026-01-02T03:04:05.000Z",
        data: created(16, index + 1, `hi @bob #${index + 1}`),
      });
      // Tampering with the body, the id or the timestamp breaks it; so does another secret.
      expect(() => wh.verify(request.body.replace("hi", "ho"), request.headers)).toThrow();
      expect(() => wh.verify(request.body, { ...request.headers, "webhook-id": "evt_16_9" })).toThrow();
      expect(() => wh.verify(request.body, { ...request.headers, "webhook-timestamp": String(Number(request.headers["webhook-timestamp"]) - 1) })).toThrow();
      expect(() => new Webhook(`whsec_${btoa("another secret of 24 bytes")}`).verify(request.body, request.headers)).toThrow();
    }
  });

  it("retries whatever is not a 2xx (a status, a redirect, a network error) with backoff by attempts, the same id each time", async () => {
    const answers = [new Response("down", { status: 503 }), new Response(null, { status: 302, headers: { location: "https://elsewhere.example/" } })];
    let call = 0;
    const { sent, fetcher } = receiver(() => {
      const answer = answers[call++];
      if (!answer) throw new TypeError("connection refused");
      return answer;
    });
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    vi.spyOn(console, "log").mockImplementation(() => undefined);
    const batch = createMessageBatch<WebhookMessage>("pr-rooms-webhooks", [message("evt_17_1", 1, 1), message("evt_17_2", 2, 3), message("evt_17_3", 3, 30)]);
    const delays = retryDelays(batch);
    const ctx = createExecutionContext();
    await deliverWebhooks(batch, HOOKS, fetcher);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages.map((retry) => retry.msgId).sort()).toEqual(["queue-evt_17_1-1", "queue-evt_17_2-3", "queue-evt_17_3-30"]);
    expect(Object.fromEntries(delays)).toEqual({
      "queue-evt_17_1-1": 2,
      "queue-evt_17_2-3": 8,
      "queue-evt_17_3-30": 6 * 3600,
    });
    expect(sent.map((request) => request.headers["webhook-id"]).sort()).toEqual(["evt_17_1", "evt_17_2", "evt_17_3"]);
  });

  it("waits at least what a Retry-After asks for", async () => {
    const { fetcher } = receiver(() => new Response("slow down", { status: 429, headers: { "retry-after": "120" } }));
    vi.spyOn(console, "log").mockImplementation(() => undefined);
    const batch = createMessageBatch<WebhookMessage>("pr-rooms-webhooks", [message("evt_18_1", 1)]);
    const delays = retryDelays(batch);
    const ctx = createExecutionContext();
    await deliverWebhooks(batch, HOOKS, fetcher);
    expect((await getQueueResult(batch, ctx)).retryMessages).toEqual([{ msgId: "queue-evt_18_1-1" }]);
    expect(Object.fromEntries(delays)).toEqual({ "queue-evt_18_1-1": 120 });
  });

  it("logs dead letters and lets them go; with WEBHOOK_URL unset, drops what is still queued", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: string) => void lines.push(line));
    vi.spyOn(console, "log").mockImplementation((line: string) => void lines.push(line));
    const dead = createMessageBatch<WebhookMessage>("pr-rooms-webhooks-dlq", [message("evt_19_1", 1, 21)]);
    const ctx = createExecutionContext();
    await handleWebhookQueue(dead, HOOKS);
    expect((await getQueueResult(dead, ctx)).explicitAcks).toEqual(["queue-evt_19_1-21"]);
    const off = createMessageBatch<WebhookMessage>("pr-rooms-webhooks", [message("evt_19_2", 2)]);
    const ctx2 = createExecutionContext();
    await handleWebhookQueue(off, {});
    expect((await getQueueResult(off, ctx2)).explicitAcks).toEqual(["queue-evt_19_2-1"]);
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      { evt: "webhook_dead", id: "evt_19_1", type: "message.created", pr: 16, timestamp: "2026-01-02T03:04:05.000Z", queue: "pr-rooms-webhooks-dlq" },
      { evt: "webhook_dropped", id: "evt_19_2", type: "message.created", why: "WEBHOOK_URL unset" },
    ]);
  });

  it("with a malformed secret, retries each event after its backoff (no attempt spent at once) and never logs the secret", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: string) => void lines.push(line));
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    const { sent, fetcher } = receiver(() => new Response(null, { status: 204 }));
    const batch = createMessageBatch<WebhookMessage>("pr-rooms-webhooks", [message("evt_20_1", 1, 2)]);
    const delays = retryDelays(batch);
    const ctx = createExecutionContext();
    await deliverWebhooks(batch, { WEBHOOK_URL: HOOKS.WEBHOOK_URL, WEBHOOK_SECRET: "whsec_not-base64!" }, fetcher);
    expect((await getQueueResult(batch, ctx)).retryMessages).toEqual([{ msgId: "queue-evt_20_1-2" }]);
    expect(Object.fromEntries(delays)).toEqual({ "queue-evt_20_1-2": 4 });
    expect(sent).toEqual([]);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ evt: "config_error", where: "webhooks", error: expect.stringContaining("WEBHOOK_SECRET") });
    expect(lines[0]).not.toContain("not-base64");
  });

  it("backs off exponentially with ±10% jitter, up to 6 hours; reads Retry-After in seconds or as a date", () => {
    expect([1, 2, 3, 4, 10, 14, 15, 20].map((attempts) => retryDelaySeconds(attempts, () => 0.5))).toEqual([2, 4, 8, 16, 1024, 16384, 21600, 21600]);
    expect(retryDelaySeconds(10, () => 0)).toBe(922);
    expect(retryDelaySeconds(10, () => 0.999999)).toBe(1126);
    expect(retryAfterSeconds("30")).toBe(30);
    expect(retryAfterSeconds(new Date(Date.now() + 90_000).toUTCString())).toBeGreaterThanOrEqual(89);
    expect(retryAfterSeconds("soon")).toBeUndefined();
    expect(retryAfterSeconds(null)).toBeUndefined();
  });
});

describe("the settings", () => {
  it("are off without WEBHOOK_URL (blank counts as unset), and need a well-formed secret with it", () => {
    expect(webhookSettings({})).toBeUndefined();
    expect(webhookSettings({ WEBHOOK_URL: " " })).toBeUndefined();
    expect(webhooksOn({ WEBHOOK_URL: "" })).toBe(false);
    expect(webhookSettings(HOOKS)).toEqual({ url: HOOKS.WEBHOOK_URL, secret: SECRET });
    expect(webhookSettings({ WEBHOOK_URL: "http://127.0.0.1:9999/hooks", WEBHOOK_SECRET: SECRET })?.url).toBe("http://127.0.0.1:9999/hooks");
    expect(() => webhookSettings({ WEBHOOK_URL: HOOKS.WEBHOOK_URL })).toThrow(/WEBHOOK_SECRET: must be set when WEBHOOK_URL is/);
    expect(webhookProblems({ WEBHOOK_URL: "http://backend.example/hooks", WEBHOOK_SECRET: "hunter2" })).toEqual([
      { variable: "WEBHOOK_URL", rule: expect.stringContaining("must be an https:// URL"), got: '"http://backend.example/hooks"' },
      // The secret's value is never echoed.
      { variable: "WEBHOOK_SECRET", rule: expect.stringContaining('must be "whsec_" followed by the base64 of 24 to 64 random bytes') },
    ]);
    for (const secret of ["whsec_", `whsec_${btoa("only 16 bytes!!!")}`, SECRET.slice("whsec_".length), `${SECRET}x`]) {
      expect(webhookProblems({ WEBHOOK_URL: HOOKS.WEBHOOK_URL, WEBHOOK_SECRET: secret }).map((problem) => problem.variable)).toEqual(["WEBHOOK_SECRET"]);
    }
    expect(webhookProblems({ WEBHOOK_URL: "https://user:pw@backend.example/", WEBHOOK_SECRET: SECRET })).toHaveLength(1);
  });
});
