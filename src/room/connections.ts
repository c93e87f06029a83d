/**
 * Connections the room can take back (connection state recovery): one row per Socket.IO
 * id that joined, kept while the connection lives and for RECOVERY_WINDOW_MS after it
 * goes. A row says who it was (username, and for direct connections the hash of its pid
 * and its token subject) and where it joined, so a replay never reaches back before the
 * join. With a window of 0 nothing is stored.
 */
import type { Sql } from "../util/meter.js";

export interface ConnectionRow {
  socketId: string;
  /** In the room as this name; null for a direct connection that has not joined (or left). */
  username: string | null;
  /** The room's head seq when it joined: a replay starts after it. */
  joinedSeq: number;
  /** When the connection went; null while it is here. */
  departedAt: number | null;
  /** Direct connections only: SHA-256 of the pid, and the token subject it was issued to. */
  pidHash: string | null;
  subject: string | null;
}

type Row = {
  socket_id: string;
  username: string | null;
  joined_seq: number;
  departed_at: number | null;
  pid_hash: string | null;
  subject: string | null;
};

const COLUMNS = "socket_id, username, joined_seq, departed_at, pid_hash, subject";

export class Connections {
  private earliestDeparture: number | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly windowMs: number,
  ) {
    if (!this.keeps) return;
    sql.exec(`CREATE TABLE IF NOT EXISTS connections (
      socket_id TEXT PRIMARY KEY, username TEXT, joined_seq INTEGER NOT NULL,
      departed_at INTEGER, pid_hash TEXT, subject TEXT)`);
    sql.exec("CREATE INDEX IF NOT EXISTS connections_pid ON connections (pid_hash) WHERE pid_hash IS NOT NULL");
    this.earliestDeparture = sql.exec<{ at: number | null }>("SELECT MIN(departed_at) AS at FROM connections").one().at ?? undefined;
  }

  get keeps(): boolean {
    return this.windowMs > 0;
  }

  /** A direct connection CONNECTed: it can be recovered by its pid even before it joins. */
  connected(socketId: string, pidHash: string, subject: string | null): void {
    if (!this.keeps) return;
    this.sql.exec(
      `INSERT INTO connections (${COLUMNS}) VALUES (?, NULL, 0, NULL, ?, ?)
       ON CONFLICT (socket_id) DO UPDATE SET departed_at = NULL`,
      socketId, pidHash, subject,
    );
  }

  /** A connection joined as `username` at `joinedSeq`. */
  joined(socketId: string, username: string, joinedSeq: number): void {
    if (!this.keeps) return;
    this.sql.exec(
      `INSERT INTO connections (${COLUMNS}) VALUES (?, ?, ?, NULL, NULL, NULL)
       ON CONFLICT (socket_id) DO UPDATE SET username = excluded.username, joined_seq = excluded.joined_seq, departed_at = NULL`,
      socketId, username, joinedSeq,
    );
  }

  /** Left the room on purpose: nothing to recover there (a direct connection stays recoverable as connected). */
  left(socketId: string): void {
    if (!this.keeps) return;
    this.sql.exec("DELETE FROM connections WHERE socket_id = ? AND pid_hash IS NULL", socketId);
    this.sql.exec("UPDATE connections SET username = NULL WHERE socket_id = ?", socketId);
  }

  /** The connection ended for good (a namespace disconnect): nothing of it is kept. */
  forget(socketId: string): void {
    if (!this.keeps) return;
    this.sql.exec("DELETE FROM connections WHERE socket_id = ?", socketId);
  }

  /** The connection went without leaving: recoverable for the window. */
  departed(socketId: string, now: number): void {
    if (!this.keeps) return;
    this.sql.exec("UPDATE connections SET departed_at = ? WHERE socket_id = ?", now, socketId);
    if (this.earliestDeparture === undefined || now < this.earliestDeparture) this.earliestDeparture = now;
  }

  /** Taken back by a recovery. */
  resumed(socketId: string): void {
    if (!this.keeps) return;
    this.sql.exec("UPDATE connections SET departed_at = NULL WHERE socket_id = ?", socketId);
  }

  /** The row of a connection that is here or went within the window. */
  find(socketId: string, now: number): ConnectionRow | undefined {
    if (!this.keeps) return undefined;
    return this.live(this.sql.exec<Row>(`SELECT ${COLUMNS} FROM connections WHERE socket_id = ?`, socketId).toArray()[0], now);
  }

  findByPid(pidHash: string, now: number): ConnectionRow | undefined {
    if (!this.keeps) return undefined;
    return this.live(this.sql.exec<Row>(`SELECT ${COLUMNS} FROM connections WHERE pid_hash = ?`, pidHash).toArray()[0], now);
  }

  /** After a restart: connections that were here are gone since now. */
  reconcile(here: ReadonlySet<string>, now: number): void {
    if (!this.keeps) return;
    for (const row of this.sql.exec<{ socket_id: string }>("SELECT socket_id FROM connections WHERE departed_at IS NULL")) {
      if (!here.has(row.socket_id)) this.departed(row.socket_id, now);
    }
  }

  nextPruneAt(): number | undefined {
    return this.earliestDeparture === undefined ? undefined : this.earliestDeparture + this.windowMs;
  }

  /** Forgets connections gone longer than the window. */
  prune(now: number): void {
    if (!this.keeps || this.earliestDeparture === undefined) return;
    this.sql.exec("DELETE FROM connections WHERE departed_at IS NOT NULL AND departed_at <= ?", now - this.windowMs);
    this.earliestDeparture = this.sql.exec<{ at: number | null }>("SELECT MIN(departed_at) AS at FROM connections").one().at ?? undefined;
  }

  private live(row: Row | undefined, now: number): ConnectionRow | undefined {
    if (!row || (row.departed_at !== null && now - row.departed_at > this.windowMs)) return undefined;
    return {
      socketId: row.socket_id,
      username: row.username,
      joinedSeq: row.joined_seq,
      departedAt: row.departed_at,
      pidHash: row.pid_hash,
      subject: row.subject,
    };
  }
}
