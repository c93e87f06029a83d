/**
 * What Cloudflare bills a Durable Object for, counted where it happens: requests (fetch, RPC,
 * alarm invocations, incoming WebSocket messages, billed 20:1), rows written (SQL, KV puts and
 * deletes, each setAlarm), rows read, and the time it cannot hibernate (a handler running, or a
 * timer holding it awake; an object that could hibernate is not billed for duration even
 * before it does). Counting is a few integer increments per event and a wrapper around
 * `sql.exec`; the figures leave as one stats log line per object, as deltas:
 * - at most every STATS_EVERY_MS while events flow (checked as a handler ends),
 * - when the object says it is a good moment (its alarm, its last socket closing),
 * so that what hibernation would forget (the counters live in memory) is mostly written first.
 */
import { log, type LogEvent } from "./log.js";

/** The one SQL method the objects use, so the metered wrapper can stand in for `ctx.storage.sql`. */
export type Sql = Pick<SqlStorage, "exec">;

/** Billed request kinds. */
export type RequestKind = "fetches" | "rpcs" | "wsMessages" | "alarms";

export interface Usage {
  fetches: number;
  rpcs: number;
  wsMessages: number;
  alarms: number;
  sqlRowsWritten: number;
  kvWrites: number;
  alarmWrites: number;
  rowsRead: number;
  awakeMs: number;
}

/** Incoming WebSocket messages per billed request. */
export const WS_MESSAGES_PER_REQUEST = 20;

export const STATS_EVERY_MS = 10_000;

const zero = (): Usage => ({ fetches: 0, rpcs: 0, wsMessages: 0, alarms: 0, sqlRowsWritten: 0, kvWrites: 0, alarmWrites: 0, rowsRead: 0, awakeMs: 0 });

export class ObjectMeter {
  private usage = zero();
  /** Everything reported so far (for tests and the object's own look; lines carry deltas). */
  private reported = zero();
  /** Other counts the object reports with its units (messages, say), reset with them. */
  private tallies: Record<string, number> = {};
  private dirty = false;
  /** Handlers running and timers holding the object awake; while above 0 it cannot hibernate. */
  private holds = 0;
  private heldSince = 0;
  private loggedAt = 0;
  /** A moment to report at once the object is idle (see `reportWhenIdle`). */
  private pendingReport: string | undefined;
  /** The last cursor: its rows count once it has been read (at the next statement, or a report). */
  private cursor: SqlStorageCursor<Record<string, SqlStorageValue>> | undefined;

  constructor(
    private readonly evt: LogEvent,
    /** The object's own fields for its line (which room, its sockets, its head seq). */
    private readonly describe: () => Record<string, string | number>,
  ) {}

  /** `sql` with every statement's rows counted. */
  sql(sql: SqlStorage): Sql {
    return {
      exec: <T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): SqlStorageCursor<T> => {
        this.settle();
        const cursor = sql.exec<T>(query, ...bindings);
        this.cursor = cursor;
        this.dirty = true;
        return cursor;
      },
    };
  }

  /** Runs an event handler as one billed request of `kind`, awake while it runs. */
  async request<T>(kind: RequestKind, run: () => T | Promise<T>): Promise<T> {
    this.usage[kind]++;
    this.dirty = true;
    this.hold();
    try {
      return await run();
    } finally {
      this.release();
    }
  }

  /** A setAlarm (or deleteAlarm): one row written. */
  alarmSet(): void {
    this.usage.alarmWrites++;
    this.dirty = true;
  }

  /** A KV put or delete: one row written. */
  kvWritten(): void {
    this.usage.kvWrites++;
    this.dirty = true;
  }

  tally(name: string): void {
    this.tallies[name] = (this.tallies[name] ?? 0) + 1;
    this.dirty = true;
  }

  /** Something keeps the object from hibernating from now (a timer), until `release`. */
  hold(): void {
    if (this.holds++ === 0) this.heldSince = Date.now();
  }

  release(): void {
    if (--this.holds > 0) return;
    const now = Date.now();
    this.usage.awakeMs += now - this.heldSince;
    const why = this.pendingReport;
    this.pendingReport = undefined;
    if (why !== undefined) this.report(why, now);
    else if (this.dirty && now - this.loggedAt >= STATS_EVERY_MS) this.report("busy", now);
  }

  /** Reports `why` as soon as nothing holds the object awake any more (now, if nothing does), its awake time counted. */
  reportWhenIdle(why: string): void {
    if (this.holds === 0) return this.report(why);
    this.pendingReport = why;
  }

  /** The units counted since this object started (in this instance: hibernation starts over). */
  get total(): Usage {
    this.settle();
    const total = { ...this.reported };
    for (const key of Object.keys(total) as Array<keyof Usage>) total[key] += this.usage[key];
    return total;
  }

  /** Writes the stats line now (if anything was counted): `why` says which moment this is. */
  report(why: string, now = Date.now()): void {
    this.settle();
    if (!this.dirty) return;
    const usage = this.usage;
    log(this.evt, {
      ...this.describe(),
      why,
      ...this.tallies,
      ...usage,
      doRequests: round2(usage.fetches + usage.rpcs + usage.alarms + usage.wsMessages / WS_MESSAGES_PER_REQUEST),
      rowsWritten: usage.sqlRowsWritten + usage.kvWrites + usage.alarmWrites,
    });
    for (const key of Object.keys(usage) as Array<keyof Usage>) this.reported[key] += usage[key];
    this.usage = zero();
    this.tallies = {};
    this.dirty = false;
    this.loggedAt = now;
  }

  private settle(): void {
    const cursor = this.cursor;
    if (!cursor) return;
    this.cursor = undefined;
    this.usage.sqlRowsWritten += cursor.rowsWritten;
    this.usage.rowsRead += cursor.rowsRead;
  }
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
