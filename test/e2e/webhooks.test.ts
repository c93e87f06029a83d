/**
 * Webhooks end to end, through Cloudflare Queues as `wrangler dev` runs them: rooms driven by
 * the real socket.io-client (both paths) emit events, the Worker's queue consumer POSTs them
 * to a real HTTP receiver on this machine, which verifies every signature with the
 * `standardwebhooks` package as a backend would. Midway the receiver fails: first it takes
 * requests and answers 503 (as if it crashed after processing, so the retries it then gets are
 * duplicates), then it is not there at all (connection refused). Once it is back, it must
 * have every event, each exactly once after deduplicating by `webhook-id`, with every attempt
 * of an event carrying the same id and body.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { MessageEventData, RoomEventData, WebhookBody } from "../../src/chat/webhooks.js";
import { ack, closeAll, collect, connected, send, until, type Socket } from "../support/client.js";
import { paths } from "../support/paths.js";
import type { ServedWorker } from "../support/worker.js";
import { wranglerDev } from "../support/wrangler-dev.js";

/** "whsec_" and the base64 of 32 bytes, as `whsec_$(openssl rand -base64 32)` makes one. */
const SECRET = `whsec_${Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 53 + 7) % 256)).toString("base64")}`;
const PRESENCE_GRACE_MS = 300;

/** One delivery attempt as the receiver saw it. */
interface Attempt {
  id: string;
  timestamp: number;
  body: string;
  verified: boolean;
  error?: string;
  answered: number;
}

/**
 * A backend's webhook endpoint: verifies each request's signature, records it, and answers
 * 204 ("up") or 503 ("failing": it took the request, then failed), or is not listening ("down").
 */
class Receiver {
  readonly attempts: Attempt[] = [];
  mode: "up" | "failing" = "up";
  port = 0;
  private server: Server | undefined;
  private readonly webhook = new Webhook(SECRET);

  async start(): Promise<void> {
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        const answered = this.mode === "up" ? 204 : 503;
        this.attempts.push({ ...this.verify(body, request.headers), body, answered });
        response.writeHead(answered).end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** Gone: the port refuses connections until `start` again. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  /** What a receiver does first: `standardwebhooks`' verify, which checks the signature and the timestamp's age. */
  private verify(body: string, headers: IncomingHttpHeaders): Omit<Attempt, "body" | "answered"> {
    const id = String(headers["webhook-id"]);
    const timestamp = Number(headers["webhook-timestamp"]);
    try {
      this.webhook.verify(body, headers as Record<string, string>);
      if (headers["content-type"] !== "application/json") throw new Error(`content-type ${headers["content-type"]}`);
      return { id, timestamp, verified: true };
    } catch (error) {
      return { id, timestamp, verified: false, error: String(error) };
    }
  }

  /** Each event once: the first body received for each webhook-id, in arrival order. */
  events(): Array<{ id: string; body: WebhookBody }> {
    const seen = new Map<string, WebhookBody>();
    for (const attempt of this.attempts) if (!seen.has(attempt.id)) seen.set(attempt.id, JSON.parse(attempt.body));
    return [...seen].map(([id, body]) => ({ id, body }));
  }

  /** Ids whose event the receiver has taken (answered 2xx). */
  delivered(): Set<string> {
    return new Set(this.attempts.filter((attempt) => attempt.answered < 300).map((attempt) => attempt.id));
  }
}

const receiver = new Receiver();
let worker: ServedWorker;
// Rooms from a random base: nothing here depends on a room being new, but ids are clearer so.
const base = 3_000_000 + Math.floor(Math.random() * 100_000) * 10;

beforeAll(async () => {
  await receiver.start();
  worker = await wranglerDev("wrangler.toml", {
    freshState: true,
    vars: {
      WEBHOOK_URL: `http://127.0.0.1:${receiver.port}/hooks/pr-rooms`,
      WEBHOOK_SECRET: SECRET,
      PRESENCE_GRACE_MS: String(PRESENCE_GRACE_MS),
    },
  });
});
afterAll(async () => {
  closeAll();
  await worker?.close();
  await receiver.stop();
});

const [[, gateway], [, direct]] = paths;

async function joined(pr: number, username: string, options = gateway(pr)): Promise<Socket> {
  const socket = await connected(worker.url, options);
  expect(await ack(socket, "join-pr-room", { pullRequestId: pr, username })).toMatchObject({ ok: true });
  return socket;
}

async function said(socket: Socket, pr: number, username: string, message: string): Promise<number> {
  const answer = await send(socket, pr, username, message);
  expect(answer).toMatchObject({ ok: true });
  return answer.seq;
}

it("the receiver gets every event, signed, exactly once after deduplication, across its own outage", { timeout: 90_000 }, async () => {
  const pr = base + 1;
  const other = base + 2;
  const expected = new Map<string, { type: string; data: Partial<MessageEventData> | RoomEventData }>();
  const message = (room: number, seq: number, username: string, text: string, mentions: string[]) =>
    expected.set(`evt_${room}_${seq}`, { type: "message.created", data: { pullRequestId: room, seq, username, message: text, mentions } });

  // 1. Up. Alice opens the room (room.occupied), Bob comes in (no event), they talk.
  const alice = await joined(pr, "alice");
  expected.set(`evt_${pr}_room_1`, { type: "room.occupied", data: { pullRequestId: pr, username: "alice" } });
  const bob = await joined(pr, "bob");
  message(pr, await said(alice, pr, "alice", "hi @bob, see @carol."), "alice", "hi @bob, see @carol.", ["bob", "carol"]);
  message(pr, await said(bob, pr, "bob", "on it"), "bob", "on it", []);
  // A room on the direct path, the room's own socket.
  const dana = await joined(other, "dana", direct(other));
  expected.set(`evt_${other}_room_1`, { type: "room.occupied", data: { pullRequestId: other, username: "dana" } });
  message(other, await said(dana, other, "dana", "@erin ping"), "dana", "@erin ping", ["erin"]);
  await until(() => receiver.delivered().size === expected.size, 15_000, () => `the first ${expected.size} events: ${[...receiver.delivered()]}`);

  // 2. Failing: the receiver takes requests but answers 503, so every retry is a duplicate.
  receiver.mode = "failing";
  const failedBefore = receiver.attempts.length;
  message(pr, await said(alice, pr, "alice", "first while failing"), "alice", "first while failing", []);
  const typo = await send(bob, pr, "bob", "aproved, @alice");
  message(pr, typo.seq, "bob", "aproved, @alice", ["alice"]);
  // An edit and a delete are events of the log too: message.edited and message.deleted, with their own seqs.
  expect(await ack(bob, "edit-pr-room-message", { pullRequestId: pr, id: typo.id, message: "approved, @alice @dana" })).toEqual({ ok: true, version: 2 });
  expected.set(`evt_${pr}_${typo.seq + 1}`, {
    type: "message.edited",
    data: { pullRequestId: pr, id: typo.id, seq: typo.seq + 1, username: "bob", message: "approved, @alice @dana", mentions: ["alice", "dana"], version: 2 },
  });
  const deleted = await ack(bob, "delete-pr-room-message", { pullRequestId: pr, id: typo.id });
  expect(deleted).toEqual({ ok: true, id: typo.id, seq: typo.seq + 2 });
  expected.set(`evt_${pr}_${typo.seq + 2}`, { type: "message.deleted", data: { pullRequestId: pr, id: typo.id, seq: typo.seq + 2, username: "bob", mentions: ["alice", "dana"] } });
  await until(() => receiver.attempts.length >= failedBefore + 2, 10_000, "the failing receiver to see both");

  // 3. Down: nothing listens. Bob leaves, then Alice: the room is empty once her grace is over (room.vacated).
  await receiver.stop();
  message(pr, await said(alice, pr, "alice", "while down"), "alice", "while down", []);
  const leftAtAlice = collect(alice, "pr-room-user-left");
  bob.close();
  await until(() => leftAtAlice.length === 1, 5000, "bob's departure, after his grace");
  alice.close();
  dana.close();
  expected.set(`evt_${pr}_room_2`, { type: "room.vacated", data: { pullRequestId: pr, username: "alice" } });
  expected.set(`evt_${other}_room_2`, { type: "room.vacated", data: { pullRequestId: other, username: "dana" } });
  // Long enough for attempts to fail against the closed port (the consumer waits up to a second to batch).
  await new Promise((resolve) => setTimeout(resolve, 2500));

  // 4. Back: the queue's retries (2 s, 4 s, 8 s, … after each failed attempt) bring the rest.
  receiver.mode = "up";
  await receiver.start();
  await until(() => [...expected.keys()].every((id) => receiver.delivered().has(id)), 60_000, () => {
    const missing = [...expected.keys()].filter((id) => !receiver.delivered().has(id));
    return `every event delivered; missing ${missing.join(", ")}\n${worker.logs?.().slice(-3000)}`;
  });

  // Every attempt was signed with the secret, freshly (verify checks the timestamp's age too).
  expect(receiver.attempts.filter((attempt) => !attempt.verified)).toEqual([]);
  // Exactly once after deduplication: each expected event, nothing else.
  const events = receiver.events();
  expect(events.map((event) => event.id).sort()).toEqual([...expected.keys()].sort());
  for (const { id, body } of events) {
    const want = expected.get(id)!;
    expect(body).toMatchObject({ type: want.type, data: want.data });
    expect(new Date(body.timestamp).toISOString()).toBe(body.timestamp);
    if (body.type === "message.created") {
      expect(body.data).toEqual({
        ...want.data,
        id: expect.any(String),
        sentAt: Date.parse(body.timestamp),
      });
    } else if (body.type === "message.edited") {
      expect(body.data).toEqual({ ...want.data, editedAt: Date.parse(body.timestamp), sentAt: expect.any(Number) });
    } else if (body.type === "message.deleted") {
      expect(body.data).toEqual({ ...want.data, sentAt: expect.any(Number) });
    } else {
      expect(body.data).toEqual(want.data);
    }
  }
  // The outage was real: some events came more than once, and every attempt of one event
  // carried the same id and the same body (only the attempt's webhook-timestamp moves on).
  const byId = Map.groupBy(receiver.attempts, (attempt) => attempt.id);
  const repeated = [...byId].filter(([, attempts]) => attempts.length > 1);
  expect(repeated.length).toBeGreaterThan(0);
  for (const [, attempts] of repeated) {
    expect(new Set(attempts.map((attempt) => attempt.body)).size).toBe(1);
    const timestamps = attempts.map((attempt) => attempt.timestamp);
    expect(timestamps).toEqual([...timestamps].sort((a, b) => a - b));
  }
  expect(receiver.attempts.some((attempt) => attempt.answered === 503)).toBe(true);
  // The consumer logged each outcome.
  const logs = worker.logs?.() ?? "";
  expect(logs).toContain('"evt":"webhook_failed"');
  expect(logs).toContain('"evt":"webhook_delivered"');
});
