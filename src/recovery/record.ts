/**
 * ConnectionRecord: what a gateway connection must remember to be recovered, kept where
 * a Worker restart cannot lose it. One small Durable Object per connection, named by the
 * SHA-256 of its pid (never the pid): the Socket.IO id, the token subject, and the rooms
 * it is in with the usernames it joined as. Written on join and leave, never per message.
 * The rooms themselves hold the rest (what was said, and who left when).
 */
import { DurableObject } from "cloudflare:workers";
import { configOf } from "../config.js";

export interface RecordedRoom {
  key: string;
  username: string;
}

export interface Recovered {
  socketId: string;
  rooms: RecordedRoom[];
}

interface Stored extends Recovered {
  subject: string | null;
  /** The Engine.IO session that holds the record now: only it may mark it detached. */
  holder: string;
  /** When the holder's connection ended; null while it lives. */
  detachedAt: number | null;
  savedAt: number;
}

/** A record no one has written for this long is dropped even if its holder never said it ended. */
const ABANDONED_MS = 7 * 24 * 3600 * 1000;
const KEY = "record";

export class ConnectionRecord extends DurableObject<Env> {
  private readonly windowMs = configOf(this.env).RECOVERY_WINDOW_MS;

  /** The holder's connection is in `rooms` now. */
  async save(holder: string, socketId: string, subject: string | null, rooms: RecordedRoom[]): Promise<void> {
    const now = Date.now();
    this.ctx.storage.kv.put(KEY, { socketId, subject, rooms, holder, detachedAt: null, savedAt: now } satisfies Stored);
    await this.ctx.storage.setAlarm(now + ABANDONED_MS);
  }

  /** The holder's connection ended at `at`: recoverable until the window passes. */
  async detach(holder: string, at: number): Promise<void> {
    const stored = this.read();
    if (!stored || stored.holder !== holder) return;
    this.ctx.storage.kv.put(KEY, { ...stored, detachedAt: at } satisfies Stored);
    await this.ctx.storage.setAlarm(at + this.windowMs);
  }

  /**
   * A connection with the pid comes back: the record, if it is within the window and the
   * subject matches (with identity on, only the same subject). The caller becomes the holder.
   */
  async claim(holder: string, subject: string | null, now: number): Promise<Recovered | null> {
    const stored = this.read();
    if (!stored) return null;
    if (stored.detachedAt !== null && now - stored.detachedAt > this.windowMs) {
      await this.forget();
      return null;
    }
    if (stored.subject !== subject) return null;
    this.ctx.storage.kv.put(KEY, { ...stored, holder, detachedAt: null, savedAt: now } satisfies Stored);
    await this.ctx.storage.setAlarm(now + ABANDONED_MS);
    return { socketId: stored.socketId, rooms: stored.rooms };
  }

  async forget(): Promise<void> {
    await this.ctx.storage.deleteAll();
  }

  override async alarm(): Promise<void> {
    const stored = this.read();
    if (!stored) return;
    const now = Date.now();
    const expired = stored.detachedAt !== null ? now - stored.detachedAt >= this.windowMs : now - stored.savedAt >= ABANDONED_MS;
    if (expired) await this.forget();
    else await this.ctx.storage.setAlarm(stored.detachedAt !== null ? stored.detachedAt + this.windowMs : stored.savedAt + ABANDONED_MS);
  }

  private read(): Stored | undefined {
    return this.ctx.storage.kv.get<Stored>(KEY);
  }
}

export function recordName(pidHash: string): string {
  return `rec:${pidHash}`;
}
