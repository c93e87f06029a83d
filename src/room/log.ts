/**
 * The room's log: every `pr-room-message` gets the next `seq` (1, 2, 3, … never reused,
 * also after a restart), and the recent ones are kept in the object's SQLite storage
 * for connection state recovery and idempotent sends. Newcomers never read it.
 *
 * Growth is bounded: entries older than the window, or beyond the count, are deleted
 * by the room's alarm (`prune`). With a window of 0 nothing but the counter is stored.
 *
 * The answers to sends with a client id are kept apart, for the whole window whatever the
 * count: a resend whose first send was pruned by count must still get its first answer, not
 * a second broadcast. They are a few short rows per message, bounded by the rate limit.
 */
import type { Sql } from "../util/meter.js";

export interface LogEntry {
  seq: number;
  /** Server time of the broadcast, ms since the epoch. */
  at: number;
  id: string;
  username: string;
  message: string;
}

export interface LogLimits {
  /** How long entries are kept (RECOVERY_WINDOW_MS); 0 keeps none. */
  windowMs: number;
  /** How many entries are kept at most (RECOVERY_MAX_MESSAGES). */
  maxEntries: number;
}

export class RoomLog {
  /** The last seq given out. */
  private head: number;
  /** The oldest entry kept, when any: pruning deletes a prefix, so seqs oldest..head are all there. */
  private oldest: { seq: number; at: number } | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly limits: LogLimits,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS log (
      seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, id TEXT NOT NULL,
      username TEXT NOT NULL, message TEXT NOT NULL, client_id TEXT)`);
    sql.exec("CREATE UNIQUE INDEX IF NOT EXISTS log_client_id ON log (username, client_id) WHERE client_id IS NOT NULL");
    sql.exec(`CREATE TABLE IF NOT EXISTS sends (
      username TEXT NOT NULL, client_id TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,
      PRIMARY KEY (username, client_id)) WITHOUT ROWID`);
    sql.exec("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    const saved = sql.exec<{ value: number }>("SELECT value FROM counters WHERE name = 'seq'").toArray()[0]?.value ?? 0;
    const bounds = sql.exec<{ first: number | null; last: number | null }>("SELECT MIN(seq) AS first, MAX(seq) AS last FROM log").one();
    this.head = Math.max(saved, bounds.last ?? 0);
    if (bounds.first !== null) {
      const at = sql.exec<{ at: number }>("SELECT at FROM log WHERE seq = ?", bounds.first).one().at;
      this.oldest = { seq: bounds.first, at };
    }
  }

  get keeps(): boolean {
    return this.limits.windowMs > 0;
  }

  /** The seq of the newest message (0 before the first). */
  get headSeq(): number {
    return this.head;
  }

  /** Numbers and records a message. With a window of 0 only the counter is saved. */
  append(entry: Omit<LogEntry, "seq">, clientId?: string): number {
    return this.appendAll([{ entry, clientId }])[0]!;
  }

  /**
   * Numbers and records messages in one go: one statement for their rows (and one for their
   * client ids), or one counter update with a window of 0.
   */
  appendAll(drafts: ReadonlyArray<{ entry: Omit<LogEntry, "seq">; clientId?: string }>): number[] {
    const seqs = drafts.map(() => ++this.head);
    if (!this.keeps) {
      if (drafts.length > 0) this.saveHead();
      return seqs;
    }
    const rows = drafts.map(({ entry }, index) => [seqs[index]!, entry.at, entry.id, entry.username, entry.message]);
    this.insert("log (seq, at, id, username, message)", rows);
    const sends = drafts.flatMap(({ entry, clientId }, index) => (clientId === undefined ? [] : [[entry.username, clientId, entry.id, seqs[index]!, entry.at]]));
    this.insert("sends (username, client_id, id, seq, at)", sends);
    if (drafts.length > 0) this.oldest ??= { seq: seqs[0]!, at: drafts[0]!.entry.at };
    return seqs;
  }

  /**
   * One INSERT for any number of 5-column rows: they go as one JSON array (one bound parameter;
   * Durable Objects' SQLite takes at most 100 per statement, 20 rows' worth).
   */
  private insert(into: string, rows: SqlStorageValue[][]): void {
    if (rows.length === 0) return;
    if (rows.length === 1) {
      this.sql.exec(`INSERT INTO ${into} VALUES (?, ?, ?, ?, ?)`, ...rows[0]!);
      return;
    }
    this.sql.exec(`INSERT INTO ${into} SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(?)`, JSON.stringify(rows));
  }

  /** The first answer to a send with this client id, if it is still kept. */
  byClientId(username: string, clientId: string): { id: string; seq: number } | undefined {
    if (!this.keeps) return undefined;
    return (
      this.sql.exec<{ id: string; seq: number }>("SELECT id, seq FROM sends WHERE username = ? AND client_id = ?", username, clientId).toArray()[0] ??
      // Sends logged before the `sends` table existed.
      this.sql.exec<{ id: string; seq: number }>("SELECT id, seq FROM log WHERE username = ? AND client_id = ?", username, clientId).toArray()[0]
    );
  }

  /**
   * Every entry after `seq`, oldest first; undefined when the log no longer reaches
   * back that far (something after `seq` was pruned or never kept).
   */
  after(seq: number): LogEntry[] | undefined {
    if (seq >= this.head) return seq === this.head ? [] : undefined;
    if (!this.oldest || this.oldest.seq > seq + 1) return undefined;
    return this.sql
      .exec<{ seq: number; at: number; id: string; username: string; message: string }>(
        "SELECT seq, at, id, username, message FROM log WHERE seq > ? ORDER BY seq",
        seq,
      )
      .toArray();
  }

  /** When `prune` next has work: the oldest entry's expiry, or now when over the count. */
  nextPruneAt(now: number): number | undefined {
    if (!this.oldest) return undefined;
    if (this.head - this.oldest.seq + 1 > this.limits.maxEntries + slack(this.limits.maxEntries)) return now;
    return this.oldest.at + this.limits.windowMs;
  }

  /** Deletes what is older than the window or beyond the count. */
  prune(now: number): void {
    if (!this.oldest) return;
    const byCount = this.head - this.limits.maxEntries;
    const byAge = now - this.limits.windowMs;
    // Always a prefix, even if clocks stepped back: everything up to the newest expired entry goes.
    const cursor = this.sql.exec(
      "DELETE FROM log WHERE seq <= MAX(?, (SELECT COALESCE(MAX(seq), 0) FROM log WHERE at < ?))",
      byCount,
      byAge,
    );
    // Client ids go by age only (see the top of this file).
    const deleted = cursor.rowsWritten;
    this.sql.exec("DELETE FROM sends WHERE at < ?", byAge);
    if (deleted === 0) return;
    // The counter must outlive the entries that carried it.
    this.saveHead();
    const first = this.sql.exec<{ seq: number; at: number }>("SELECT seq, at FROM log ORDER BY seq LIMIT 1").toArray()[0];
    this.oldest = first;
  }

  /** Entries kept now. */
  get size(): number {
    return this.oldest ? this.head - this.oldest.seq + 1 : 0;
  }

  private saveHead(): void {
    // An update is one row written; an upsert would count two.
    const updated = this.sql.exec("UPDATE counters SET value = ? WHERE name = 'seq'", this.head).rowsWritten;
    if (updated === 0) this.sql.exec("INSERT INTO counters (name, value) VALUES ('seq', ?)", this.head);
  }
}

/**
 * Past the count, pruning waits for a tenth more (at least one) so that a busy room
 * runs its alarm once per batch, not once per message.
 */
function slack(maxEntries: number): number {
  return Math.max(1, Math.floor(maxEntries / 10));
}
