/**
 * One alarm, many deadlines: typing expiry, presence grace, log pruning, the direct
 * heartbeat. Each part says when it next needs to run; the alarm is moved only when
 * something needs it sooner, so a busy room does not rewrite it per event (each setAlarm
 * is billed as a row written).
 */
import type { ObjectMeter } from "../util/meter.js";

/** An alarm this late has not merely been delayed by a busy object: it is gone. */
export const LOST_AFTER_MS = 5_000;

export class Alarm {
  /** What storage holds: null when no alarm is set. */
  private scheduled: number | null = null;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly meter: ObjectMeter,
  ) {}

  /** Reads the alarm set before the object last slept (in the constructor's blockConcurrencyWhile). */
  async load(): Promise<void> {
    this.scheduled = await this.storage.getAlarm();
  }

  /**
   * Makes sure the alarm fires at `at` or earlier. Never for a time already past: an alarm set
   * from the alarm handler for the very millisecond it runs may never fire, and the room would
   * then believe an alarm pending forever and wake no more. One that should have run more than
   * LOST_AFTER_MS ago, and has not, is taken as lost and set again, to run at once.
   */
  wake(at: number | undefined): void {
    if (at === undefined) return;
    const now = Date.now();
    const lost = this.scheduled !== null && this.scheduled < now - LOST_AFTER_MS;
    if (!lost && this.scheduled !== null && this.scheduled <= at) return;
    const next = lost ? now + 1 : Math.max(at, now + 1);
    this.scheduled = next;
    this.meter.alarmSet();
    void this.storage.setAlarm(next);
  }

  /** The alarm fired: nothing is scheduled until `wake` says so. */
  fired(): void {
    this.scheduled = null;
  }
}

export function earliest(...times: Array<number | undefined>): number | undefined {
  let min: number | undefined;
  for (const time of times) if (time !== undefined && (min === undefined || time < min)) min = time;
  return min;
}
