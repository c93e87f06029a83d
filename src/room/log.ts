/**
 * The room's log: every room event gets the next `seq` (1, 2, 3, … never reused, also after a
 * restart): a `pr-room-message`, and the changes to one (an edit, a delete, its reactions).
 * The recent ones are kept in the object's SQLite storage for connection state recovery and
 * idempotent sends, and with history on (HISTORY_RETENTION_DAYS) messages stay for that long,
 * to be read a page at a time. A newcomer is never sent any of it by itself.
 *
 * A message's row holds its current state (text, version, reactions); a change is a row of
 * its own that points at the message (same `id`), so a replay sends each change in order,
 * with the message as it is now. A delete empties the message's row: what was deleted is
 * gone from storage too, and is never replayed.
 *
 * Growth is bounded: entries older than the window (or the history's retention), or beyond
 * the count (without history), are deleted by the room's alarm (`prune`). With neither,
 * nothing but the counter is stored.
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

/** What happened to a message, after it was sent: each is a room event with its own seq. */
export type ChangeKind = "edit" | "delete" | "reactions";

/** Who reacted with what: emoji → usernames, in the order they first reacted. */
export type Reactions = Record<string, string[]>;

/** A message as it is now. */
export interface StoredMessage extends LogEntry {
  /** 1 for the original, +1 per edit. */
  version: number;
  editedAt: number | null;
  deleted: boolean;
  reactions: Reactions;
}

/** One event of the log, for a replay: a message (as it is now), or a change with the message it changed. */
export type LoggedEvent = { seq: number; kind: "message"; message: StoredMessage } | { seq: number; kind: ChangeKind; id: string; message: StoredMessage | undefined };

export interface LogLimits {
  /** How long entries are kept for recovery (RECOVERY_WINDOW_MS); 0: no recovery. */
  windowMs: number;
  /** How many entries recovery keeps at most (RECOVERY_MAX_MESSAGES), when there is no history. */
  maxEntries: number;
  /** How long messages are kept for history (HISTORY_RETENTION_DAYS); 0: no history. */
  historyMs?: number;
}

type MessageRow = {
  seq: number;
  at: number;
  id: string;
  username: string;
  message: string;
  version: number;
  edited_at: number | null;
  deleted: number;
  reactions: string | null;
};

const MESSAGE_COLUMNS = "seq, at, id, username, message, version, edited_at, deleted, reactions";

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
      username TEXT NOT NULL, message TEXT NOT NULL, client_id TEXT,
      kind TEXT NOT NULL DEFAULT 'message', version INTEGER NOT NULL DEFAULT 1, edited_at INTEGER,
      deleted INTEGER NOT NULL DEFAULT 0, reactions TEXT)`);
    sql.exec("CREATE UNIQUE INDEX IF NOT EXISTS log_client_id ON log (username, client_id) WHERE client_id IS NOT NULL");
    sql.exec(`CREATE TABLE IF NOT EXISTS sends (
      username TEXT NOT NULL, client_id TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,
      PRIMARY KEY (username, client_id)) WITHOUT ROWID`);
    sql.exec("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    const counters = new Map(sql.exec<{ name: string; value: number }>("SELECT name, value FROM counters WHERE name IN ('seq', 'schema')").toArray().map((row) => [row.name, row.value]));
    if ((counters.get("schema") ?? 1) < 2) migrateToEvents(sql);
    const saved = counters.get("seq") ?? 0;
    const bounds = sql.exec<{ first: number | null; last: number | null }>("SELECT MIN(seq) AS first, MAX(seq) AS last FROM log").one();
    this.head = Math.max(saved, bounds.last ?? 0);
    if (bounds.first !== null) {
      const at = sql.exec<{ at: number }>("SELECT at FROM log WHERE seq = ?", bounds.first).one().at;
      this.oldest = { seq: bounds.first, at };
    }
  }

  /** Whether anything but the counter is stored: recovery or history is on. */
  get keeps(): boolean {
    return this.limits.windowMs > 0 || this.history;
  }

  /** Recovery is on: frames carry the room's offset, and sends are kept for the window. */
  get recovers(): boolean {
    return this.limits.windowMs > 0;
  }

  /** History is on: messages stay for HISTORY_RETENTION_DAYS, to be read a page at a time. */
  get history(): boolean {
    return (this.limits.historyMs ?? 0) > 0;
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
    if (this.recovers) {
      const sends = drafts.flatMap(({ entry, clientId }, index) => (clientId === undefined ? [] : [[entry.username, clientId, entry.id, seqs[index]!, entry.at]]));
      this.insert("sends (username, client_id, id, seq, at)", sends);
    }
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
    if (!this.recovers) return undefined;
    return (
      this.sql.exec<{ id: string; seq: number }>("SELECT id, seq FROM sends WHERE username = ? AND client_id = ?", username, clientId).toArray()[0] ??
      // Sends logged before the `sends` table existed.
      this.sql.exec<{ id: string; seq: number }>("SELECT id, seq FROM log WHERE username = ? AND client_id = ?", username, clientId).toArray()[0]
    );
  }

  /**
   * Every event after `seq`, oldest first, each change with its message as it is now;
   * undefined when the log no longer reaches back that far (something after `seq` was pruned
   * or never kept).
   */
  after(seq: number): LoggedEvent[] | undefined {
    if (seq >= this.head) return seq === this.head ? [] : undefined;
    if (!this.oldest || this.oldest.seq > seq + 1) return undefined;
    const rows = this.sql.exec<MessageRow & { kind: string }>(`SELECT ${MESSAGE_COLUMNS}, kind FROM log WHERE seq > ? ORDER BY seq`, seq).toArray();
    const messages = new Map<string, StoredMessage | undefined>();
    for (const row of rows) if (row.kind === "message") messages.set(row.id, storedMessage(row));
    // A change to a message from before `seq` reads that message once, however many changes it had.
    const earlier = (id: string) => {
      if (!messages.has(id)) messages.set(id, this.find(id, true));
      return messages.get(id);
    };
    return rows.map((row) => {
      if (row.kind === "message") return { seq: row.seq, kind: "message", message: messages.get(row.id)! };
      return { seq: row.seq, kind: row.kind as ChangeKind, id: row.id, message: earlier(row.id) };
    });
  }

  /** The message with this id, as it is now; undefined when unknown, pruned, or (unless `deleted`) deleted. */
  find(id: string, deleted = false): StoredMessage | undefined {
    if (!this.keeps) return undefined;
    const row = this.sql.exec<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM log WHERE id = ? AND kind = 'message'`, id).toArray()[0];
    if (!row || (row.deleted && !deleted)) return undefined;
    return storedMessage(row);
  }

  /**
   * Logs a change to `message` as the next room event, and keeps the message's new state in
   * its row (a delete empties it). `actor` is who made the change. Returns the event's seq.
   */
  change(kind: ChangeKind, message: StoredMessage, actor: string, at: number): number {
    const seq = ++this.head;
    this.sql.exec("INSERT INTO log (seq, at, id, username, message, kind) VALUES (?, ?, ?, ?, '', ?)", seq, at, message.id, actor, kind);
    if (kind === "delete") {
      this.sql.exec("UPDATE log SET message = '', deleted = 1, reactions = NULL WHERE seq = ?", message.seq);
    } else {
      const reactions = Object.keys(message.reactions).length > 0 ? JSON.stringify(message.reactions) : null;
      this.sql.exec("UPDATE log SET message = ?, version = ?, edited_at = ?, reactions = ? WHERE seq = ?", message.message, message.version, message.editedAt, reactions, message.seq);
    }
    return seq;
  }

  /** At most `limit` messages just before `before` (the latest without it), oldest first, and whether there are older ones. */
  page(before: number | undefined, limit: number): { messages: StoredMessage[]; hasMore: boolean } {
    if (!this.keeps) return { messages: [], hasMore: false };
    const rows = this.sql
      .exec<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM log WHERE kind = 'message' AND seq < ? ORDER BY seq DESC LIMIT ?`, before ?? Number.MAX_SAFE_INTEGER, limit + 1)
      .toArray();
    const hasMore = rows.length > limit;
    return { messages: rows.slice(0, limit).reverse().map(storedMessage), hasMore };
  }

  /** How long entries are kept: the recovery window, or the history's retention if longer. */
  private get keepMs(): number {
    return Math.max(this.limits.windowMs, this.limits.historyMs ?? 0);
  }

  /** When `prune` next has work: the oldest entry's expiry, or now when over the count. */
  nextPruneAt(now: number): number | undefined {
    if (!this.oldest) return undefined;
    if (!this.history && this.head - this.oldest.seq + 1 > this.limits.maxEntries + slack(this.limits.maxEntries)) return now;
    return this.oldest.at + this.keepMs;
  }

  /** Deletes what is older than the window (or the history's retention) or, without history, beyond the count. */
  prune(now: number): void {
    if (!this.oldest) return;
    const byCount = this.history ? 0 : this.head - this.limits.maxEntries;
    const byAge = now - this.keepMs;
    // Always a prefix, even if clocks stepped back: everything up to the newest expired entry goes.
    const cursor = this.sql.exec(
      "DELETE FROM log WHERE seq <= MAX(?, (SELECT COALESCE(MAX(seq), 0) FROM log WHERE at <= ?))",
      byCount,
      byAge,
    );
    // Client ids go by age only (see the top of this file), for the recovery window.
    const deleted = cursor.rowsWritten;
    this.sql.exec("DELETE FROM sends WHERE at <= ?", now - this.limits.windowMs);
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

function storedMessage(row: MessageRow): StoredMessage {
  return {
    seq: row.seq,
    at: row.at,
    id: row.id,
    username: row.username,
    message: row.message,
    version: row.version,
    editedAt: row.edited_at,
    deleted: row.deleted === 1,
    reactions: row.reactions ? (JSON.parse(row.reactions) as Reactions) : {},
  };
}

/** A log from before room events: the columns a change needs, added once. */
function migrateToEvents(sql: Sql): void {
  const columns = new Set(sql.exec<{ name: string }>("SELECT name FROM pragma_table_info('log')").toArray().map((row) => row.name));
  const added: Array<[string, string]> = [
    ["kind", "TEXT NOT NULL DEFAULT 'message'"],
    ["version", "INTEGER NOT NULL DEFAULT 1"],
    ["edited_at", "INTEGER"],
    ["deleted", "INTEGER NOT NULL DEFAULT 0"],
    ["reactions", "TEXT"],
  ];
  for (const [name, type] of added) if (!columns.has(name)) sql.exec(`ALTER TABLE log ADD COLUMN ${name} ${type}`);
  sql.exec("INSERT INTO counters (name, value) VALUES ('schema', 2) ON CONFLICT (name) DO UPDATE SET value = 2");
}

/**
 * Past the count, pruning waits for a tenth more (at least one) so that a busy room
 * runs its alarm once per batch, not once per message.
 */
function slack(maxEntries: number): number {
  return Math.max(1, Math.floor(maxEntries / 10));
}
