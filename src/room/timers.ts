/**
 * In-memory deadlines (held events, token expiry) on the room's alarm. A short one (held
 * events wait JOIN_GRACE_MS, at most 10 s) also gets a timer: a pending timer keeps the
 * object from hibernating, which would drop what is held in memory unanswered. Long ones
 * (token expiry) are set again when the room wakes, so they need not keep it awake. The
 * time a short one holds the room awake is billed as duration, so the meter counts it.
 */
import type { Scheduler } from "../chat/chat.js";
import type { ObjectMeter } from "../util/meter.js";
import { earliest, type Alarm } from "./alarm.js";

/** Deadlines up to this long keep the room awake until they run. */
const KEEP_AWAKE_MS = 10_000;

export class RoomTimers implements Scheduler {
  private readonly pending = new Set<{ at: number; run: () => void }>();

  constructor(
    private readonly alarms: Alarm,
    private readonly meter: ObjectMeter,
  ) {}

  after(ms: number, run: () => void): () => void {
    const timer = { at: Date.now() + ms, run };
    this.pending.add(timer);
    this.alarms.wake(timer.at);
    if (ms > KEEP_AWAKE_MS) return () => this.pending.delete(timer);
    this.meter.hold();
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.meter.release();
    };
    const awake = setTimeout(() => {
      release();
      this.runDue(Date.now());
    }, ms);
    return () => {
      clearTimeout(awake);
      release();
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
