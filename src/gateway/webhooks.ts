/**
 * The Worker's queue consumer for webhooks: rooms enqueue events (room/outbox.ts), and this
 * delivers each one to WEBHOOK_URL as a Standard Webhooks request (docs/webhooks.md):
 *
 *   POST WEBHOOK_URL
 *   content-type: application/json
 *   webhook-id: evt_123_7              the same on every attempt of one event
 *   webhook-timestamp: 1767225600      this attempt's time, unix seconds (what receivers check for replays)
 *   webhook-signature: v1,<base64>     HMAC-SHA256 with WEBHOOK_SECRET over "{id}.{timestamp}.{body}"
 *   {"type":"message.created","timestamp":"2026-…Z","data":{…}}
 *
 * A 2xx answer acknowledges the message. Anything else (another status, a redirect, a
 * network error, no answer within ATTEMPT_TIMEOUT_MS) retries it after `retryDelaySeconds`
 * (exponential, with jitter; longer when the receiver sends Retry-After). After the
 * consumer's `max_retries` (wrangler.toml) the queue moves it to the dead-letter queue,
 * whose consumer here logs each one as `webhook_dead` and acknowledges it.
 *
 * Attempts in one batch run side by side; one slow receiver answer costs the batch at most
 * the timeout. Rooms never wait for any of this.
 */
import type { Webhook } from "standardwebhooks";
import { WEBHOOK_ID, webhookSettings, type WebhookMessage, type WebhookSettings } from "../chat/webhooks.js";
import { log } from "../util/log.js";

/** How long one attempt may take before it counts as failed (Standard Webhooks suggests 15–30 s). */
export const ATTEMPT_TIMEOUT_MS = 15_000;
/** The longest wait between two attempts (the schedule reaches it after the 15th failed attempt). */
export const MAX_RETRY_DELAY_SECONDS = 6 * 3600;

/** Queues whose name ends so are dead-letter queues (wrangler.toml: `pr-rooms-webhooks-dlq`). */
const DEAD_LETTER_SUFFIX = "-dlq";

/**
 * The wait before attempt `attempts + 1`, after `attempts` failed ones: 2^attempts seconds
 * (2, 4, 8, … about 4.5 h at the 14th), at most MAX_RETRY_DELAY_SECONDS, ±10% jitter so
 * that events that failed together do not all come back together.
 */
export function retryDelaySeconds(attempts: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_RETRY_DELAY_SECONDS, 2 ** Math.max(1, attempts));
  return Math.max(1, Math.min(MAX_RETRY_DELAY_SECONDS, Math.round(base * (0.9 + 0.2 * random()))));
}

/** A Retry-After header in seconds (delta-seconds or an HTTP date), if it says anything usable. */
export function retryAfterSeconds(header: string | null, now = Date.now()): number | undefined {
  if (header === null) return undefined;
  const seconds = /^\s*\d+\s*$/.test(header) ? Number(header) : (Date.parse(header) - now) / 1000;
  return Number.isFinite(seconds) && seconds > 0 ? Math.ceil(seconds) : undefined;
}

/**
 * `standardwebhooks` (with its SHA-256 and base64, about 27 KiB) is loaded on the first
 * delivery, not on every isolate's start: most invocations never deliver a webhook.
 */
let library: Promise<typeof import("standardwebhooks")> | undefined;
/** One signer per secret (an isolate reuses its env). */
const signers = new Map<string, Webhook>();

/** The three Standard Webhooks headers for `payload`, signed now. */
export async function signatureHeaders(settings: WebhookSettings, id: string, payload: string, now = new Date()): Promise<Record<string, string>> {
  let signer = signers.get(settings.secret);
  if (!signer) {
    const { Webhook } = await (library ??= import("standardwebhooks"));
    signer = new Webhook(settings.secret);
    signers.set(settings.secret, signer);
  }
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
    "webhook-signature": signer.sign(id, now, payload),
  };
}

/** The consumer's entry point (src/index.ts `queue`): deliveries, or dead letters. */
export async function handleWebhookQueue(batch: MessageBatch<WebhookMessage>, env: object): Promise<void> {
  if (batch.queue.endsWith(DEAD_LETTER_SUFFIX)) return deadLetters(batch);
  return deliverWebhooks(batch, env);
}

/** Delivers every message of the batch, side by side: ack on 2xx, retry with backoff otherwise. */
export async function deliverWebhooks(batch: MessageBatch<WebhookMessage>, env: object, fetcher: typeof fetch = fetch): Promise<void> {
  let settings: WebhookSettings | undefined;
  try {
    settings = webhookSettings(env);
  } catch (error) {
    // A bad WEBHOOK_SECRET (or URL): each event waits its backoff for a fixed configuration,
    // rather than spending its attempts at once. The message never holds the secret.
    log("config_error", { where: "webhooks", error: String(error) });
    for (const message of batch.messages) message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
    return;
  }
  if (!settings) {
    // Turned off with events still queued: they are not delivered.
    for (const message of batch.messages) {
      if (!wellFormed(message)) continue;
      log("webhook_dropped", { id: message.body.id, type: message.body.body.type, why: "WEBHOOK_URL unset" });
      message.ack();
    }
    return;
  }
  await Promise.all(batch.messages.map((message) => deliver(message, settings, fetcher)));
}

/** Only rooms write to the queue; anything else that lands there is logged and let go, never retried. */
function wellFormed(message: Message<unknown>): message is Message<WebhookMessage> {
  const body = message.body as Partial<WebhookMessage> | null;
  if (body && typeof body.id === "string" && WEBHOOK_ID.test(body.id) && typeof body.body?.type === "string" && typeof body.body.data === "object") return true;
  log("webhook_dropped", { queueMessage: message.id, why: "malformed" });
  message.ack();
  return false;
}

async function deliver(message: Message<WebhookMessage>, settings: WebhookSettings, fetcher: typeof fetch): Promise<void> {
  if (!wellFormed(message)) return;
  try {
    await attempt(message, settings, fetcher);
  } catch (error) {
    // Not the receiver's doing (signing failed, say): this one event waits its backoff; the batch goes on.
    log("handler_error", { where: "webhook delivery", id: message.body.id, error: String(error) });
    message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
  }
}

/** One attempt: POST, then ack (2xx) or retry with backoff. */
async function attempt(message: Message<WebhookMessage>, settings: WebhookSettings, fetcher: typeof fetch): Promise<void> {
  const { id, body } = message.body;
  const fields = { id, type: body.type, pr: body.data.pullRequestId, attempt: message.attempts };
  const payload = JSON.stringify(body);
  const started = Date.now();
  let status: number | undefined;
  let retryAfter: number | undefined;
  let error: string | undefined;
  try {
    const response = await fetcher(settings.url, {
      method: "POST",
      headers: { "content-type": "application/json", ...(await signatureHeaders(settings, id, payload)) },
      body: payload,
      // A redirect is a failure (Standard Webhooks): the URL should be updated instead.
      redirect: "manual",
      signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
    });
    status = response.status;
    retryAfter = retryAfterSeconds(response.headers.get("retry-after"));
    await response.body?.cancel();
  } catch (caught) {
    error = caught instanceof Error && caught.name === "TimeoutError" ? `no answer within ${ATTEMPT_TIMEOUT_MS} ms` : String(caught);
  }
  const ms = Date.now() - started;
  if (status !== undefined && status >= 200 && status < 300) {
    log("webhook_delivered", { ...fields, status, ms });
    return message.ack();
  }
  const delaySeconds = Math.min(MAX_RETRY_DELAY_SECONDS, Math.max(retryDelaySeconds(message.attempts), retryAfter ?? 0));
  log("webhook_failed", { ...fields, status, error, ms, retryInSeconds: delaySeconds });
  message.retry({ delaySeconds });
}

/** What landed in the dead-letter queue: one `webhook_dead` line each (id, type, room), then gone. */
function deadLetters(batch: MessageBatch<WebhookMessage>): void {
  for (const message of batch.messages) {
    if (!wellFormed(message)) continue;
    const { id, body } = message.body;
    log("webhook_dead", { id, type: body.type, pr: body.data.pullRequestId, timestamp: body.timestamp, queue: batch.queue });
    message.ack();
  }
}
