/**
 * One alarm, many deadlines: typing expiry, presence grace, log pruning, the direct
 * heartbeat. Each part says when it next needs to run; the alarm is moved only when
 * something needs it sooner, so a busy room does not rewrite it per event (each setAlarm
 * is billed as a row written).
 */
import type { ObjectMeter } from "../util/meter.js";

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

  /** Makes sure the alarm fires at `at` or earlier. */
  wake(at: number | undefined): void {
    if (at === undefined || (this.scheduled !== null && this.scheduled <= at)) return;
    this.scheduled = at;
    this.meter.alarmSet();
    void this.storage.setAlarm(at);
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
