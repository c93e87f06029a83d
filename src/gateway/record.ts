/**
 * ConnectionRecord: what a gateway connection must remember to be recovered, kept where
 * a Worker restart cannot lose it. One small Durable Object per connection, named by the
 * SHA-256 of its pid (never the pid): the Socket.IO id, the token subject, and the rooms
 * it is in with the usernames it joined as. Written on join and leave, never per message.
 * The rooms themselves hold the rest (what was said, and who left when). Its bill (requests,
 * rows written) is logged as `record_stats` (util/meter.ts).
 */
import { DurableObject } from "cloudflare:workers";
import { loadIdentity, type StoredIdentity } from "../chat/identity.js";
import { configOf, deadPeerMs } from "../chat/config.js";
import { decideRecovery, TAKEOVER_GRACE_MS } from "../chat/recovery.js";
import { ObjectMeter } from "../util/meter.js";

export interface RecordedRoom {
  key: string;
  username: string;
}

export interface Recovered {
  socketId: string;
  rooms: RecordedRoom[];
}

/** What a claim that succeeded answers: the record, and where the client says it is in each room (its offset). */
export interface Claimed extends Recovered {
  /** Room key → the seq of the last message the client got there (keys are pull request numbers). */
  positions: Record<string, number>;
}

/** Who claims a record: the new connection's token identity, the pull request its URL names, and its offset. */
export interface RecordClaimant {
  identity?: StoredIdentity;
  only?: string;
  offset?: unknown;
}

export type ClaimResult = ({ ok: true } & Claimed) | { ok: false; why: string };

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
  private readonly config = configOf(this.env);
  private readonly windowMs = this.config.RECOVERY_WINDOW_MS;

  /** Claims waiting for the holder to say how its connection ended. */
  private readonly waiting = new Set<() => void>();
  readonly meter = new ObjectMeter("record_stats", () => ({}));

  /** The holder's connection is in `rooms` now. A connection that was taken over by another writes nothing. */
  save(holder: string, socketId: string, subject: string | null, rooms: RecordedRoom[]): Promise<void> {
    return this.meter.request("rpcs", async () => {
      const stored = this.read();
      if (stored && stored.holder !== holder) return;
      this.write({ socketId, subject, rooms, holder, detachedAt: null, savedAt: Date.now() });
      await this.keepAlarm();
    });
  }

  /** The holder's connection ended at `at`: recoverable until the window passes. */
  detach(holder: string, at: number): Promise<void> {
    return this.meter.request("rpcs", async () => {
      const stored = this.read();
      if (!stored || stored.holder !== holder) return;
      this.write({ ...stored, detachedAt: at });
      this.changed();
      await this.setAlarm(at + this.windowMs);
    });
  }

  /**
   * A connection with the pid comes back: the record, if decideRecovery lets `claimant` take
   * it now (the window, the token, the rooms its token and URL allow, its offset). The caller becomes the holder.
   *
   * While the holder's connection has not been seen to end, the claim first gives it
   * TAKEOVER_GRACE_MS to say how it ended: a client's `disconnect()` can reach the server
   * after its next connection's CONNECT (socket.io-client holds it until an upgrade is
   * done), and a namespace disconnect is not recoverable. A half-dead connection says
   * nothing, and is taken over once the grace has passed.
   */
  claim(holder: string, claimant: RecordClaimant): Promise<ClaimResult> {
    return this.meter.request("rpcs", () => this.decide(holder, claimant));
  }

  private async decide(holder: string, claimant: RecordClaimant): Promise<ClaimResult> {
    let stored = this.read();
    if (stored && stored.detachedAt === null && stored.holder !== holder) {
      await this.settled(stored.holder, Date.now() + TAKEOVER_GRACE_MS);
      stored = this.read();
    }
    if (!stored) return { ok: false, why: "unknown or expired connection" };
    const now = Date.now();
    const candidate = { departedAt: stored.detachedAt, subject: stored.subject, rooms: stored.rooms.map(({ key }) => key) };
    const identity = claimant.identity && loadIdentity(claimant.identity);
    const decided = decideRecovery(candidate, { identity, only: claimant.only, offset: claimant.offset }, now, {
      RECOVERY_WINDOW_MS: this.windowMs,
      silenceMs: deadPeerMs(this.config, "gateway"),
    });
    if (!decided.ok) {
      if (stored.detachedAt !== null && now - stored.detachedAt > this.windowMs) await this.drop();
      return decided;
    }
    this.write({ ...stored, holder, detachedAt: null, savedAt: now });
    this.changed();
    await this.keepAlarm();
    return { ok: true, socketId: stored.socketId, rooms: stored.rooms, positions: Object.fromEntries(decided.positions) };
  }

  /** The connection ended for good (or its recovery failed): nothing to come back to. Only its holder may say so. */
  forget(holder?: string): Promise<void> {
    return this.meter.request("rpcs", () => this.drop(holder));
  }

  override async alarm(): Promise<void> {
    await this.meter.request("alarms", async () => {
      const stored = this.read();
      if (!stored) return;
      const now = Date.now();
      const expired = stored.detachedAt !== null ? now - stored.detachedAt >= this.windowMs : now - stored.savedAt >= ABANDONED_MS;
      if (expired) await this.drop();
      else await this.setAlarm(stored.detachedAt !== null ? stored.detachedAt + this.windowMs : stored.savedAt + ABANDONED_MS);
    });
    this.meter.report("alarm");
  }

  private async drop(holder?: string): Promise<void> {
    const stored = this.read();
    if (holder !== undefined && stored && stored.holder !== holder) return;
    if (stored) this.meter.kvWritten();
    await this.ctx.storage.deleteAll();
    this.changed();
    // The record's life ends here: its line is written before the object goes.
    this.meter.report("end");
  }

  private write(stored: Stored): void {
    this.meter.kvWritten();
    this.ctx.storage.kv.put(KEY, stored);
  }

  /**
   * A live record needs some alarm (each setAlarm is a row written): the one set already
   * serves, since the alarm looks at the record and sets the next (abandonment, a week
   * after the last save) itself.
   */
  private async keepAlarm(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null) await this.setAlarm(Date.now() + ABANDONED_MS);
  }

  private async setAlarm(at: number): Promise<void> {
    this.meter.alarmSet();
    await this.ctx.storage.setAlarm(at);
  }

  /** Until `holder` detached or forgot its record (or another claim took it), or `deadline`. */
  private async settled(holder: string, deadline: number): Promise<void> {
    const live = () => {
      const stored = this.read();
      return stored !== undefined && stored.detachedAt === null && stored.holder === holder;
    };
    while (live() && Date.now() < deadline) {
      // Awaiting a timer leaves the object's input open: the holder's detach or forget comes in.
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiting.delete(done);
          resolve();
        };
        const timer = setTimeout(done, deadline - Date.now());
        this.waiting.add(done);
      });
    }
  }

  private changed(): void {
    for (const wake of [...this.waiting]) wake();
  }

  private read(): Stored | undefined {
    return this.ctx.storage.kv.get<Stored>(KEY);
  }
}

export function recordName(pidHash: string): string {
  return `rec:${pidHash}`;
}
