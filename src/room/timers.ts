/**
 * In-memory deadlines (held events, token expiry) on the room's alarm. A short one (held
 * events wait JOIN_GRACE_MS, at most 10 s) also gets a timer: a pending timer keeps the
 * object from hibernating, which would drop what is held in memory unanswered. Long ones
 * (token expiry) are set again when the room wakes, so they need not keep it awake.
 */
import type { Scheduler } from "../chat/chat.js";
import { earliest, type Alarm } from "./alarm.js";

/** Deadlines up to this long keep the room awake until they run. */
const KEEP_AWAKE_MS = 10_000;

export class RoomTimers implements Scheduler {
  private readonly pending = new Set<{ at: number; run: () => void }>();

  constructor(private readonly alarms: Alarm) {}

  after(ms: number, run: () => void): () => void {
    const timer = { at: Date.now() + ms, run };
    this.pending.add(timer);
    this.alarms.wake(timer.at);
    const awake = ms <= KEEP_AWAKE_MS ? setTimeout(() => this.runDue(Date.now()), ms) : undefined;
    return () => {
      if (awake !== undefined) clearTimeout(awake);
      this.pending.delete(timer);
    };
  }

  runDue(now: number): void {
    for (const timer of [...this.pending]) {
      if (timer.at > now) continue;
      this.pending.delete(timer);
      timer.run();
    }
  }

  next(): number | undefined {
    return earliest(...Array.from(this.pending, (timer) => timer.at));
  }
}
