/**
 * Who is in the room, per person rather than per tab. A username is present while it
 * has a connection here, and for PRESENCE_GRACE_MS after its last one goes: a reload, a
 * network blip or a recovered connection inside that window is never announced.
 *
 * Announced users (and when their grace started) live in storage, so presence survives
 * hibernation and restarts; live connection counts are rebuilt from the sockets.
 * Joins and departures cost O(1); nothing here runs per message.
 */
import type { Sql } from "../util/meter.js";

export class Presence {
  /** Live connections in the room per username. */
  private readonly live = new Map<string, number>();
  /** Users announced present: null while connected, else when their last connection went. */
  private readonly users = new Map<string, number | null>();

  constructor(
    private readonly sql: Sql,
    private readonly graceMs: number,
  ) {
    sql.exec("CREATE TABLE IF NOT EXISTS presence (username TEXT PRIMARY KEY, leaving_since INTEGER)");
    for (const row of sql.exec<{ username: string; leaving_since: number | null }>("SELECT username, leaving_since FROM presence")) {
      this.users.set(row.username, row.leaving_since);
    }
  }

  /** Live connections of `username`. */
  connections(username: string): number {
    return this.live.get(username) ?? 0;
  }

  /** Counts a connection that is already announced (the room woke up with it). */
  count(username: string): void {
    this.live.set(username, this.connections(username) + 1);
  }

  /** A connection joined; true when the others must hear that the user arrived. */
  arrive(username: string): boolean {
    this.count(username);
    if (this.connections(username) > 1) return false;
    const leavingSince = this.users.get(username);
    this.users.set(username, null);
    if (leavingSince === undefined) {
      this.sql.exec("INSERT INTO presence (username, leaving_since) VALUES (?, NULL)", username);
      return true;
    }
    // Back within the grace period (or recovered): nobody was told it left.
    if (leavingSince !== null) this.sql.exec("UPDATE presence SET leaving_since = NULL WHERE username = ?", username);
    return false;
  }

  /** A connection went; true when the user has left now (no grace) and must be announced. */
  depart(username: string, now: number): boolean {
    const left = this.connections(username) - 1;
    if (left > 0) {
      this.live.set(username, left);
      return false;
    }
    this.live.delete(username);
    if (!this.users.has(username)) return false;
    if (this.graceMs === 0) {
      this.remove(username);
      return true;
    }
    this.leaving(username, now);
    return false;
  }

  /** Users whose grace ran out without a connection coming back: forgotten now, for the room to announce. */
  expire(now: number): string[] {
    const gone: string[] = [];
    for (const [username, since] of this.users) {
      if (since !== null && since + this.graceMs <= now && this.connections(username) === 0) gone.push(username);
    }
    for (const username of gone) this.remove(username);
    return gone;
  }

  nextExpiryAt(): number | undefined {
    let next: number | undefined;
    for (const since of this.users.values()) {
      if (since !== null && (next === undefined || since + this.graceMs < next)) next = since + this.graceMs;
    }
    return next;
  }

  /** After a restart: users shown present whose connections did not survive start their grace now. */
  reconcile(now: number): void {
    for (const [username, since] of this.users) {
      if (since === null && this.connections(username) === 0) this.leaving(username, now);
    }
  }

  /** How many users are present (announced, or within their grace). */
  get size(): number {
    return this.users.size;
  }

  /** The usernames present, sorted. */
  list(): string[] {
    return [...this.users.keys()].sort();
  }

  /** The user's last connection went at `since`: its grace runs from then. */
  private leaving(username: string, since: number): void {
    this.users.set(username, since);
    this.sql.exec("UPDATE presence SET leaving_since = ? WHERE username = ?", since, username);
  }

  private remove(username: string): void {
    this.users.delete(username);
    this.sql.exec("DELETE FROM presence WHERE username = ?", username);
  }
}
