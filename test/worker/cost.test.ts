/**
 * What a room is billed for, read from its meter (src/util/meter.ts) inside workerd: an idle
 * direct room pays one alarm invocation and one row written per ping round and nothing else;
 * an idle gateway room pays nothing at all; a room without direct sockets sets no heartbeat
 * alarm; and the `room_stats` line says so with the exact field names the cost bench reads.
 */
import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { PrRoom } from "../../src/room/pr-room.js";
import { Alarm, LOST_AFTER_MS } from "../../src/room/alarm.js";
import { ObjectMeter, type Usage } from "../../src/util/meter.js";
import { until } from "../shared/until.js";
import { call, member, PATHS } from "./raw-client.js";

let nextPr = 47_000;
const freshPr = () => nextPr++;
const [[, gateway], [, direct]] = PATHS;
const PING_INTERVAL = 300; // vitest.config.ts (DIRECT_PING_INTERVAL_MS and PING_INTERVAL_MS)

const room = (pr: number) => env.PR_ROOM.getByName(`pr:${pr}`);
const totals = (pr: number) => runInDurableObject(room(pr), (instance: PrRoom) => instance.meter.total);
const alarmOf = (pr: number) => runInDurableObject(room(pr), (_: PrRoom, state) => state.storage.getAlarm());
const minus = (after: Usage, before: Usage) =>
  Object.fromEntries(Object.keys(after).map((key) => [key, after[key as keyof Usage] - before[key as keyof Usage]])) as unknown as Usage;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(() => {
  vi.restoreAllMocks();
});

describe("an idle room's bill", () => {
  it("direct: each ping round is one alarm invocation and one row written (its next alarm), nothing else", { timeout: 15_000 }, async () => {
    const pr = freshPr();
    const clients = await Promise.all(["ann", "bob", "cyd"].map((name) => member(direct, pr, name)));
    // Joins settle (presence rows, connection rows); then only the heartbeat runs.
    await sleep(PING_INTERVAL);
    const before = await totals(pr);
    await sleep(6 * PING_INTERVAL);
    const spent = minus(await totals(pr), before);
    expect(spent.alarms).toBeGreaterThanOrEqual(4);
    expect(spent.alarms).toBeLessThanOrEqual(8);
    expect(spent.alarmWrites).toBe(spent.alarms);
    expect(spent.sqlRowsWritten).toBe(0);
    expect(spent.kvWrites).toBe(0);
    // The runtime answers the pongs: no message reaches the room.
    expect(spent.wsMessages).toBe(0);
    expect(spent.fetches + spent.rpcs).toBe(0);
    // And everyone is still there.
    expect((await call(clients[0]!, "get-pr-room-users", { pullRequestId: pr })).users).toEqual(["ann", "bob", "cyd"]);
    for (const client of clients) client.close();
  });

  it("direct: a round after hibernation still judges the last round's pings, though nothing was stored for them", { timeout: 15_000 }, async () => {
    const pr = freshPr();
    const alive = await member(direct, pr, "alive");
    const ghost = await member(direct, pr, "ghost");
    ghost.autoPong = false;
    // A round pings the ghost, which leaves it unanswered; then the room sleeps, losing its memory.
    while ((await ghost.next({ timeoutMs: 2000 })) !== "2");
    const pingedAt = Date.now();
    await evictDurableObject(room(pr), { webSockets: "hibernate" });
    expect((await ghost.waitClosed(3000)).reason).toBe("ping timeout");
    // Judged by the very next round (a room that forgot the ping would ping again, and judge a round later).
    expect(Date.now() - pingedAt).toBeLessThan(PING_INTERVAL + 150);
    // The one that answers stays, pinged on time across the sleep.
    alive.autoPong = false;
    let pings = 0;
    const started = Date.now();
    while (Date.now() - started < 4 * PING_INTERVAL) {
      if ((await alive.next({ timeoutMs: 2000 })) !== "2") continue;
      alive.send("3");
      if (++pings === 1) await evictDurableObject(room(pr), { webSockets: "hibernate" });
    }
    expect(pings).toBeGreaterThanOrEqual(3);
    expect(alive.closed).toBeUndefined();
    alive.close();
  });

  it("gateway: no request at all, and no alarm, while the Worker pings its clients", { timeout: 15_000 }, async () => {
    const pr = freshPr();
    const clients = await Promise.all(["ann", "bob"].map((name) => member(gateway, pr, name)));
    await sleep(PING_INTERVAL);
    const before = await totals(pr);
    await sleep(6 * PING_INTERVAL);
    const spent = minus(await totals(pr), before);
    expect(spent).toEqual({ ...spent, fetches: 0, rpcs: 0, wsMessages: 0, alarms: 0, alarmWrites: 0, sqlRowsWritten: 0, kvWrites: 0 });
    expect(await alarmOf(pr)).toBeNull();
    for (const client of clients) client.close();
  });

  it("a room whose last direct socket went stops its heartbeat", { timeout: 15_000 }, async () => {
    const pr = freshPr();
    const client = await member(direct, pr, "ann");
    client.close();
    // The presence grace (300 ms) and the connection's recovery row (3 s) still want the alarm; then nothing does.
    let alarms = -1;
    await until(
      async () => {
        const seen = (await totals(pr)).alarms;
        const settled = seen === alarms && (await alarmOf(pr)) === null;
        alarms = seen;
        return settled;
      },
      8_000,
      "no alarm left, and none ran for a while",
      2 * PING_INTERVAL,
    );
    const before = await totals(pr);
    await sleep(4 * PING_INTERVAL);
    expect(minus(await totals(pr), before).alarms).toBe(0);
  });
});

describe("the meter", () => {
  it("counts a message as it is billed: one incoming WebSocket message, its log row, no alarm per message", async () => {
    const pr = freshPr();
    const alice = await member(gateway, pr, "alice");
    await call(alice, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: "warm" });
    const before = await totals(pr);
    for (let n = 0; n < 5; n++) await call(alice, "send-message-to-pr-room", { pullRequestId: pr, username: "alice", message: `m${n}` });
    const spent = minus(await totals(pr), before);
    expect(spent.wsMessages).toBe(5);
    expect(spent.sqlRowsWritten).toBe(5);
    expect(spent.alarmWrites).toBe(0);
    alice.close();
  });

  it("writes the room_stats line with every unit, as deltas, and starts over after it", () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: string) => void lines.push(line));
    const meter = new ObjectMeter("room_stats", () => ({ pr: "7", sockets: 2, seq: 9 }));
    void meter.request("wsMessages", () => {});
    for (let n = 0; n < 39; n++) void meter.request("wsMessages", () => {});
    void meter.request("alarms", () => {});
    meter.alarmSet();
    meter.kvWritten();
    meter.tally("messages");
    meter.report("alarm");
    expect(JSON.parse(lines.at(-1)!)).toEqual({
      evt: "room_stats",
      pr: "7",
      sockets: 2,
      seq: 9,
      why: "alarm",
      messages: 1,
      fetches: 0,
      rpcs: 0,
      wsMessages: 40,
      alarms: 1,
      sqlRowsWritten: 0,
      kvWrites: 1,
      alarmWrites: 1,
      rowsRead: 0,
      awakeMs: expect.any(Number),
      doRequests: 3,
      rowsWritten: 2,
    });
    const count = lines.length;
    meter.report("alarm");
    expect(lines.length).toBe(count); // nothing new: no line
    expect(meter.total.wsMessages).toBe(40);
  });
});

describe("the room's alarm", () => {
  it("is never set for a time already past, and one that was lost is set again", { timeout: 15_000 }, async () => {
    const pr = freshPr();
    await member(direct, pr, "ann").then((client) => client.close());
    const result = await runInDurableObject(room(pr), async (_: PrRoom, state) => {
      const alarm = new Alarm(state.storage, new ObjectMeter("room_stats", () => ({})));
      await state.storage.deleteAlarm();
      await alarm.load();
      const before = Date.now();
      alarm.wake(before - 1000);
      const pastSetTo = await state.storage.getAlarm();
      // As if that alarm never fired: storage has none, the object still counts on it.
      await state.storage.deleteAlarm();
      await new Promise((resolve) => setTimeout(resolve, LOST_AFTER_MS + 200));
      alarm.wake(Date.now() + 60_000);
      const lostSetTo = await state.storage.getAlarm();
      return { before, pastSetTo, lostSetTo, now: Date.now() };
    });
    expect(result.pastSetTo).toBeGreaterThan(result.before);
    // Set again to run at once, not in a minute.
    expect(result.lostSetTo).not.toBeNull();
    expect(result.lostSetTo!).toBeLessThanOrEqual(result.now + 1000);
  });
});
