/**
 * Slow readers are judged by progress, not by the size of a burst, end to end with the real
 * socket.io-client on both paths (MAX_BACKLOG_BYTES 256 KiB, SLOW_READER_TIMEOUT_MS 2 s, the
 * rate limit raised): a burst of 1,500 messages of 3.9 kB (~6 MB to each reader) reaches
 * every reader that keeps reading, the sender included, and cuts none; a reader whose TCP
 * socket is paused is cut SLOW_READER_TIMEOUT_MS after it went over the cap, although
 * nothing more is sent to it, and recovers everything once it reads again.
 */
import type { Socket as NetSocket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PrRoomMessage } from "../../src/chat/events.js";
import { closeAll, collect, documentedMember, once, until, type Socket } from "../support/client.js";
import { paths } from "../support/paths.js";
import type { ServedWorker } from "../support/worker.js";
import { wranglerDev } from "../support/wrangler-dev.js";

const LIMIT = 262_144;
const SLOW_READER_TIMEOUT = 2_000;
const BODY = "x".repeat(3_900);
let worker: ServedWorker;
let nextPr = 3_000_000 + Math.floor(Math.random() * 1_000_000) * 100;
const freshPr = () => nextPr++;

beforeAll(async () => {
  const vars = {
    MAX_BACKLOG_BYTES: String(LIMIT),
    SLOW_READER_TIMEOUT_MS: String(SLOW_READER_TIMEOUT),
    RATE_LIMIT_PER_SECOND: "100000",
    RATE_LIMIT_BURST: "100000",
    // A burst's replay on recovery must fit too (1,500 messages).
    RECOVERY_MAX_MESSAGES: "2000",
  };
  worker = await wranglerDev("wrangler.toml", { vars, freshState: true });
});
afterAll(async () => {
  closeAll();
  await worker?.close();
});

/** The TCP socket under socket.io-client's WebSocket (Node builds use the `ws` package). */
function tcpOf(socket: Socket): NetSocket {
  return (socket.io.engine as unknown as { transport: { ws: { _socket: NetSocket } } }).transport.ws._socket;
}

/** The server's `slow_reader` lines about the Socket.IO connection `id` so far. */
function cutsOf(id: string): number {
  return worker.logs!().split("\n").filter((line) => line.includes('"evt":"slow_reader"') && line.includes(`"socketId":"${id}"`)).length;
}

const allSlowReaderLines = () => (worker.logs!().match(/"evt":"slow_reader"/g) ?? []).length;

describe.each(paths)("on the %s path", (_, optionsFor) => {
  const joined = (pr: number, username: string) => documentedMember(worker.url, pr, username, optionsFor(pr));

  it("a burst of 1,500 messages of 3.9 kB reaches every reader that keeps reading, the sender included, and cuts none", async () => {
    const pr = freshPr();
    const readers = await Promise.all(["sender", "alice", "bob"].map((name) => joined(pr, name)));
    const sender = readers[0]!;
    const received = readers.map((reader) => collect<PrRoomMessage>(reader, "pr-room-message"));
    const drops = readers.map((reader) => collect(reader, "disconnect"));
    const cutsBefore = allSlowReaderLines();

    // All at once: the room writes ~6 MB to each reader far faster than a reader takes it in.
    const acks = Array.from({ length: 1_500 }, (_, i) =>
      sender.timeout(25_000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "sender", message: `${i} ${BODY}` }),
    );
    expect((await Promise.all(acks)).every((ack) => ack?.ok === true)).toBe(true);
    await until(() => received.every((messages) => messages.length >= 1_500), 20_000, () => `1,500 messages at each reader (got ${received.map((m) => m.length)})`);

    expect(received.map((messages) => messages.length)).toEqual([1_500, 1_500, 1_500]);
    for (const messages of received) expect(messages.map((m) => m.seq)).toEqual(Array.from({ length: 1_500 }, (_, i) => i + 1));
    expect(drops).toEqual([[], [], []]);
    expect(readers.every((reader) => reader.connected)).toBe(true);
    expect(allSlowReaderLines()).toBe(cutsBefore);
  });

  it("a reader that stops reading is cut SLOW_READER_TIMEOUT_MS after it went over the cap, with nothing more sent, and recovers", async () => {
    const pr = freshPr();
    const sender = await joined(pr, "sender");
    const paused = await joined(pr, "paused");
    const id = paused.id!;
    const atPaused = collect<PrRoomMessage>(paused, "pr-room-message");

    tcpOf(paused).pause(); // stops reading: what the server sends piles up unread
    const started = Date.now();
    const total = 100; // 390 kB: over the 256 KiB cap
    for (let start = 0; start < total; start += 20) {
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          sender.timeout(10_000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "sender", message: `${start + i} ${BODY}` }),
        ),
      );
    }
    const lastSent = Date.now();
    expect(cutsOf(id)).toBe(0); // not for the size alone
    // Nothing more is sent: the server's own deadline cuts it.
    await until(() => cutsOf(id) > 0, SLOW_READER_TIMEOUT + 3_000, "the paused reader to be cut", 20);
    const cutAt = Date.now();
    expect(cutAt - started).toBeGreaterThanOrEqual(SLOW_READER_TIMEOUT - 100);
    expect(cutAt - lastSent).toBeLessThan(SLOW_READER_TIMEOUT + 1_500);

    const reconnected = once(paused, "connect", 20_000);
    tcpOf(paused).resume(); // it reads again: what was sent, then the close, then it comes back
    await reconnected;
    expect(paused.recovered).toBe(true);
    await until(() => atPaused.length >= total, 15_000, "every message at the paused reader, after recovery");
    expect(atPaused.map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(sender.connected).toBe(true);
  });
});
