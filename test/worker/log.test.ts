/**
 * The room's log inside workerd: sequence numbers across restarts, pruning by age and
 * by count (by alarm), idempotent sends, replay from an offset, and recovery off.
 */
import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ObjectMeter } from "../../src/util/meter.js";
import { RoomLog } from "../../src/room/log.js";
import { LogWriter } from "../../src/room/log-writer.js";
import type { PrRoom } from "../../src/room/pr-room.js";
import { call, member, PATHS } from "./raw-client.js";

let nextPr = 40_000;
const freshPr = () => nextPr++;
const room = (pr: number) => env.PR_ROOM.getByName(`pr:${pr}`);

/** A RoomLog on a room object's own storage, as the room builds it. */
function withLog<T>(pr: number, limits: { windowMs: number; maxEntries: number }, run: (log: RoomLog, sql: SqlStorage) => T): Promise<T> {
  return runInDurableObject(room(pr), (_: PrRoom, state) => run(new RoomLog(state.storage.sql, limits), state.storage.sql));
}

const entry = (at: number, n: number) => ({ at, id: `id-${n}`, username: "alice", message: `m${n}` });

describe("RoomLog", () => {
  it("numbers 1, 2, 3 … and never reuses a number, even after pruning everything and a restart", async () => {
    const pr = freshPr();
    const limits = { windowMs: 1000, maxEntries: 5 };
    expect(await withLog(pr, limits, (log) => [1, 2, 3].map((n) => log.append(entry(Date.now(), n))))).toEqual([1, 2, 3]);
    // Everything expires and is pruned; the counter must survive its entries.
    await withLog(pr, limits, (log) => log.prune(Date.now() + 60_000));
    expect(await withLog(pr, limits, (log) => log.size)).toBe(0);
    await evictDurableObject(room(pr), { webSockets: "close" });
    expect(await withLog(pr, limits, (log) => [log.headSeq, log.append(entry(Date.now(), 4))])).toEqual([3, 4]);
  });

  it("prunes by age: what is older than the window goes, the rest stays, always a prefix", async () => {
    const pr = freshPr();
    const limits = { windowMs: 10_000, maxEntries: 100 };
    const t0 = Date.now();
    const kept = await withLog(pr, limits, (log) => {
      for (let n = 1; n <= 6; n++) log.append(entry(t0 + n * 1000, n));
      log.prune(t0 + 13_500); // entries at t0+1s … t0+3s are older than 10 s
      return log.after(0);
    });
    expect(kept).toBeUndefined(); // the log no longer reaches back to seq 1
    const rest = await withLog(pr, limits, (log) => log.after(3)!.map((e) => e.seq));
    expect(rest).toEqual([4, 5, 6]);
    expect(await withLog(pr, limits, (log) => log.nextPruneAt(t0))).toBe(t0 + 4000 + 10_000);
  });

  it("prunes by count down to the maximum, and asks for it only past a slack", async () => {
    const pr = freshPr();
    const limits = { windowMs: 3_600_000, maxEntries: 10 };
    const now = Date.now();
    const due = await withLog(pr, limits, (log) => {
      for (let n = 1; n <= 11; n++) log.append(entry(now, n));
      const early = log.nextPruneAt(now); // 11 ≤ 10 + slack: not yet
      log.append(entry(now, 12));
      return [early, log.nextPruneAt(now)];
    });
    expect(due).toEqual([now + 3_600_000, now]);
    expect(await withLog(pr, limits, (log) => (log.prune(now), [log.size, log.after(2)?.[0]?.seq]))).toEqual([10, 3]);
  });

  it("answers a repeated client id with the first answer, and keeps nothing with a window of 0", async () => {
    const pr = freshPr();
    const first = await withLog(pr, { windowMs: 60_000, maxEntries: 10 }, (log) => {
      const seq = log.append(entry(Date.now(), 1), "client-1");
      return [seq, log.byClientId("alice", "client-1"), log.byClientId("bob", "client-1")];
    });
    expect(first).toEqual([1, { id: "id-1", seq: 1 }, undefined]);
    const off = freshPr();
    const counted = await withLog(off, { windowMs: 0, maxEntries: 10 }, (log, sql) => {
      log.append(entry(Date.now(), 1), "client-1");
      log.append(entry(Date.now(), 2));
      return [log.headSeq, log.byClientId("alice", "client-1"), sql.exec("SELECT COUNT(*) AS n FROM log").one().n];
    });
    expect(counted).toEqual([2, undefined, 0]);
    // The counter alone survives a restart, so numbers stay unique without a log.
    await evictDurableObject(room(off), { webSockets: "close" });
    expect(await withLog(off, { windowMs: 0, maxEntries: 10 }, (log) => log.append(entry(Date.now(), 3)))).toBe(3);
  });

  it("writes one row per message (plus the index row when a client id is given)", async () => {
    const pr = freshPr();
    const rows = await runInDurableObject(room(pr), (_: PrRoom, state) => {
      const meter = new ObjectMeter("room_stats", () => ({}));
      const log = new RoomLog(meter.sql(state.storage.sql), { windowMs: 60_000, maxEntries: 100 });
      const before = meter.total.sqlRowsWritten;
      log.append(entry(Date.now(), 1));
      const plain = meter.total.sqlRowsWritten - before;
      log.append(entry(Date.now(), 2), "cid");
      return [plain, meter.total.sqlRowsWritten - before - plain];
    });
    expect(rows).toEqual([1, 2]);
  });
});

describe.each(PATHS)("the room's log on the %s path", (_, queryFor) => {
  it("numbers messages across a restart of the room's object", async () => {
    const pr = freshPr();
    const alice = await member(queryFor, pr, "alice");
    const send = (message: string) => call(alice, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message });
    expect((await send("one")).seq).toBe(1);
    expect((await send("two")).seq).toBe(2);
    alice.close();
    await evictDurableObject(room(pr), { webSockets: "close" });
    const again = await member(queryFor, pr, "alice");
    expect(await call(again, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "three" })).toMatchObject({ ok: true, seq: 3 });
    again.close();
  });

  it("prunes by count when its alarm runs (RECOVERY_MAX_MESSAGES is 40 in tests)", async () => {
    const pr = freshPr();
    const alice = await member(queryFor, pr, "alice");
    // Past a connection's rate budget: the rest comes the way a backend publishes.
    for (let i = 0; i < 45; i++) await room(pr).publish({ username: "ci-bot", message: `m${i}` });
    expect(await call(alice, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "last" })).toMatchObject({ seq: 46 });
    await runDurableObjectAlarm(room(pr));
    const kept = await runInDurableObject(room(pr), (_: PrRoom, state) =>
      state.storage.sql.exec<{ n: number; first: number }>("SELECT COUNT(*) AS n, MIN(seq) AS first FROM log").one(),
    );
    expect(kept).toEqual({ n: 40, first: 7 });
    alice.close();
  });

  it("sends a repeated clientMessageId once, answering the first send's id and seq", async () => {
    const pr = freshPr();
    const alice = await member(queryFor, pr, "alice");
    const bob = await member(queryFor, pr, "bob");
    const payload = { pullRequestId: pr, username: "alice", message: "exactly once", clientMessageId: "retry-1" };
    const first = await call(alice, "send-message-to-pr-room", payload);
    const again = await call(alice, "send-message-to-pr-room", payload);
    expect(again).toEqual(first);
    // Another user may use the same id: ids are per sender.
    const other = await call(bob, "send-message-to-pr-room", { ...payload, username: "bob" });
    expect(other.seq).toBe(first.seq + 1);
    await call(alice, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "marker" });
    const seen = [];
    for (;;) {
      const [, message] = await bob.nextEvent("pr-room-message");
      seen.push(message.message);
      if (message.message === "marker") break;
    }
    expect(seen).toEqual(["exactly once", "exactly once", "marker"]);
    alice.close();
    bob.close();
  });

  it.each([
    ["a number", 42],
    ["an empty string", ""],
    ["65 characters", "x".repeat(65)],
    ["an object", { id: 1 }],
  ])("refuses a clientMessageId that is %s with invalid_payload", async (_what, clientMessageId) => {
    const pr = freshPr();
    const alice = await member(queryFor, pr, "alice");
    const ack = await call(alice, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "x", clientMessageId });
    expect(ack).toEqual({ ok: false, error: { code: "invalid_payload", message: expect.stringContaining("clientMessageId") } });
    alice.close();
  });
});

describe("LogWriter", () => {
  it("writes a burst in one statement once the write before it committed, and answers in order, each after its broadcast", async () => {
    const pr = freshPr();
    const result = await runInDurableObject(room(pr), async (_: PrRoom, state) => {
      const statements: string[] = [];
      const sql = { exec: (query: string, ...bindings: unknown[]) => (statements.push(query), state.storage.sql.exec(query, ...bindings)) } as unknown as SqlStorage;
      const log = new RoomLog(sql, { windowMs: 60_000, maxEntries: 1000 });
      statements.length = 0;
      const events: string[] = [];
      const writer = new LogWriter(log, {
        sync: () => state.storage.sync(),
        logged: (entry) => events.push(`broadcast ${entry.seq} ${entry.message}`),
        failed: (error) => events.push(`failed ${String(error)}`),
      });
      const answers: number[] = [];
      // 30 messages in one turn: the first goes at once, the other 29 wait for its commit.
      for (let n = 1; n <= 30; n++) writer.post({ username: "alice", message: `m${n}`, clientId: n % 2 ? `c${n}` : undefined }, ({ seq }) => (answers.push(seq), events.push(`answer ${seq}`)));
      // A resend of a waiting message gets that one's answer, and no second entry.
      writer.post({ username: "alice", message: "m3 again", clientId: "c3" }, ({ seq }) => answers.push(-seq));
      const firstTurn = statements.filter((query) => query.startsWith("INSERT")).length;
      while (writer.pending > 0) await state.storage.sync();
      const rows = state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM log").one().n;
      return { firstTurn, inserts: statements.filter((query) => query.startsWith("INSERT")), answers, events, rows };
    });
    expect(result.firstTurn).toBe(2); // m1's row and its client id
    expect(result.inserts).toHaveLength(4); // then one statement per table for the other 29
    expect(result.rows).toBe(30);
    expect(result.answers).toEqual([1, 2, 3, -3, ...Array.from({ length: 27 }, (_, i) => i + 4)]);
    expect(result.events.slice(0, 4)).toEqual(["broadcast 1 m1", "answer 1", "broadcast 2 m2", "answer 2"]);
    expect(result.events).not.toContain(expect.stringMatching(/^failed/));
  });
});

describe("RoomLog pruning at its own deadline", () => {
  it("prunes an entry at exactly the time nextPruneAt named (else its alarm would find nothing to do)", async () => {
    const pr = freshPr();
    const limits = { windowMs: 1000, maxEntries: 100 };
    const at = Date.now();
    const [due, size] = await withLog(pr, limits, (log) => {
      log.append(entry(at, 1));
      const due = log.nextPruneAt(at)!;
      log.prune(due);
      return [due, log.size];
    });
    expect(due).toBe(at + 1000);
    expect(size).toBe(0);
  });
});

describe("RoomLog with history (HISTORY_RETENTION_DAYS)", () => {
  const DAY = 86_400_000;
  it("keeps messages for the retention, beyond the recovery window and count, and prunes them after", async () => {
    const pr = freshPr();
    const limits = { windowMs: 1000, maxEntries: 5, historyMs: 7 * DAY };
    const now = Date.now();
    await withLog(pr, limits, (log) => {
      for (let n = 1; n <= 12; n++) log.append(entry(now, n));
    });
    // Past the window and over the count: all twelve stay, and read as pages.
    expect(await withLog(pr, limits, (log) => (log.prune(now + DAY), log.size))).toBe(12);
    expect(await withLog(pr, limits, (log) => log.page(undefined, 5).messages.map((m) => m.seq))).toEqual([8, 9, 10, 11, 12]);
    expect(await withLog(pr, limits, (log) => log.page(8, 5))).toMatchObject({ hasMore: true });
    expect(await withLog(pr, limits, (log) => (log.prune(now + 8 * DAY), [log.size, log.page(undefined, 5).messages.length]))).toEqual([0, 0]);
    // The numbering goes on.
    expect(await withLog(pr, limits, (log) => log.append(entry(now, 13)))).toBe(13);
  });

  it("empties a deleted message's row: its text is gone from storage", async () => {
    const pr = freshPr();
    const limits = { windowMs: 60_000, maxEntries: 100, historyMs: 0 };
    const text = await runInDurableObject(room(pr), (_: PrRoom, state) => {
      const log = new RoomLog(state.storage.sql, limits);
      log.append({ at: Date.now(), id: "secret-id", username: "ann", message: "password: hunter2" });
      log.change("delete", log.find("secret-id")!, "ann", Date.now());
      return state.storage.sql.exec<{ message: string }>("SELECT message FROM log").toArray().map((row) => row.message);
    });
    expect(text.join("")).not.toContain("hunter2");
  });
});

describe("LogWriter's bound", () => {
  it("refuses a message while MAX_WAITING messages wait for a stalled commit, takes a resend of a waiting one, and goes on once it commits", async () => {
    const pr = freshPr();
    const result = await runInDurableObject(room(pr), async (_: PrRoom, state) => {
      const log = new RoomLog(state.storage.sql, { windowMs: 60_000, maxEntries: 1000 });
      let commit: () => void = () => {};
      const stalled = new Promise<void>((resolve) => (commit = resolve));
      const writer = new LogWriter(log, { sync: () => stalled, logged: () => {}, failed: () => {} }, 3);
      const answered: number[] = [];
      const post = (n: number, clientId?: string) => writer.post({ username: "ann", message: `m${n}`, clientId }, ({ seq }) => answered.push(seq));
      const taken = [post(1), post(2, "c2"), post(3), post(4)];
      const full = post(5);
      const resend = post(2, "c2");
      commit();
      await state.storage.sync();
      while (writer.pending > 0) await state.storage.sync();
      await new Promise((resolve) => setTimeout(resolve, 0));
      const after = post(6);
      return { taken, full, resend, after, answered };
    });
    // The first is written at once; three wait; the fourth waiting one is refused.
    expect(result.taken).toEqual([true, true, true, true]);
    expect(result.full).toBe(false);
    expect(result.resend).toBe(true);
    expect(result.after).toBe(true);
    expect(result.answered).toEqual([1, 2, 2, 3, 4, 5]);
  });
});
