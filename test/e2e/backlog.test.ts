/**
 * The slow-reader cap end to end (MAX_BACKLOG_BYTES, SLOW_READER_TIMEOUT_MS): a client that
 * stops reading is cut off long before the heartbeat would notice, comes back by itself and
 * recovers every message exactly once; a healthy client in the same busy room is never cut
 * off. (test/e2e/slow-reader.test.ts: bursts, and when the cut comes.)
 */
import type { Socket as NetSocket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PrRoomMessage } from "../../src/chat/events.js";
import { closeAll, collect, documentedMember, once, until, type Socket } from "../support/client.js";
import { paths } from "../support/paths.js";
import { wranglerDev } from "../support/wrangler-dev.js";
import type { ServedWorker } from "../support/worker.js";

const LIMIT = 256 * 1024;
const SLOW_READER_TIMEOUT = 2_000;
let worker: ServedWorker;
// Rooms from a random base: wrangler keeps room state between runs in .wrangler/state.
let nextPr = 1_000_000 + Math.floor(Math.random() * 1_000_000) * 100;
const freshPr = () => nextPr++;

beforeAll(async () => {
  const vars = { MAX_BACKLOG_BYTES: String(LIMIT), SLOW_READER_TIMEOUT_MS: String(SLOW_READER_TIMEOUT), RATE_LIMIT_PER_SECOND: "100000", RATE_LIMIT_BURST: "100000", X_LOCAL_OBSERVABILITY: "false" };
  worker = await wranglerDev("wrangler.toml", { vars });
});
afterAll(async () => {
  closeAll();
  await worker?.close();
});

/** The TCP socket under socket.io-client's WebSocket (Node builds use the `ws` package). */
function tcpOf(socket: Socket): NetSocket {
  const transport = (socket.io.engine as unknown as { transport: { ws: { _socket: NetSocket } } }).transport;
  return transport.ws._socket;
}


describe.each(paths)("a slow reader on the %s path", (_, optionsFor) => {
  const joined = (pr: number, username: string) => documentedMember(worker.url, pr, username, optionsFor(pr));

  it("is cut off past the cap, recovers everything once it reads again, and a healthy member is never cut", async () => {
    const pr = freshPr();
    const sender = await joined(pr, "sender");
    const healthy = await joined(pr, "healthy");
    const slow = await joined(pr, "slow");
    const atHealthy = collect<PrRoomMessage>(healthy, "pr-room-message");
    const atSlow = collect<PrRoomMessage>(slow, "pr-room-message");
    const healthyDrops = collect(healthy, "disconnect");
    const cutsBefore = (worker.logs!().match(/"evt":"slow_reader"/g) ?? []).length;

    tcpOf(slow).pause(); // stops reading: what the server sends piles up unread
    const body = "x".repeat(3000);
    const total = 400; // ~1.2 MB: several times the cap
    for (let start = 0; start < total; start += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, total - start) }, (_, i) =>
          sender.timeout(15_000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "sender", message: `${start + i} ${body}` }),
        ),
      );
    }
    // The server cut the slow one off by itself, SLOW_READER_TIMEOUT_MS after it stopped reading (its heartbeat is 25 s away).
    await until(() => (worker.logs!().match(/"evt":"slow_reader"/g) ?? []).length > cutsBefore, SLOW_READER_TIMEOUT + 8_000, "the slow reader to be cut off");
    await until(() => atHealthy.length === total, 15_000, "every message at the healthy member");
    expect(healthyDrops).toEqual([]);
    expect(healthy.connected).toBe(true);

    const reconnected = once(slow, "connect", 20_000);
    tcpOf(slow).resume(); // it reads again: what was sent, then the close, then it comes back
    await reconnected;
    expect(slow.recovered).toBe(true);
    await until(() => atSlow.length >= total, 15_000, "every message at the slow member, after recovery");
    expect(atSlow.map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });
});
