/**
 * The fault harness, short version (npm test): a fixed set of seeds, each one schedule of a
 * few clients and rooms under random faults, checked against the invariant (see
 * schedule.ts and invariant.ts). Longer runs: `npm run chaos -- --runs N --seed S`.
 *
 * No shrinking here (it would take minutes against a real server): a failure prints its
 * seed and schedule; `npm run chaos -- --seed S --runs 1` reproduces it and shrinks it.
 */
import { test } from "@fast-check/vitest";
import { afterAll, beforeEach, describe } from "vitest";
import { disposeEnv, formatStats, newEnv, runSchedule, scheduleArb, SHORT } from "./schedule.js";

/**
 * Picked by generating schedules (without running them: `npm run chaos -- --short --list-seeds
 * A..B`) so that together they cover every fault kind, both paths, polling upgrades, several
 * rooms per connection, identity on and off, and the short recovery log; 2793 and 647 include
 * explicit disconnects of gateway clients, and 166 the polling upgrade under a burst right after a
 * drop (the shapes of two bugs the long runs found). `npm run chaos -- --short --seeds 647,176,…`
 * runs exactly these schedules.
 */
export const SHORT_SEEDS = [647, 176, 2392, 2793, 166];

const env = newEnv({ expectRecovery: true, verbose: process.env.CHAOS_VERBOSE === "1", live: false, print: (line) => console.log(line) }, SHORT);

describe("chaos: random fault schedules against the Worker under wrangler", () => {
  beforeEach(() => {
    env.shrinking = false;
    env.target = undefined;
  });
  afterAll(async () => {
    console.log(["chaos (short version):", ...formatStats(env.stats)].join("\n  "));
    await disposeEnv(env);
  });

  for (const seed of SHORT_SEEDS) {
    test.prop([scheduleArb(SHORT)], { seed, numRuns: 1, endOnFailure: true })(
      `schedule of seed ${seed}`,
      async (schedule) => {
        await runSchedule(env, schedule);
      },
      120_000,
    );
  }
});
