/**
 * `npm run chaos -- [options]`: long fault schedules (scripts/chaos.mjs bundles and runs this).
 *
 *   --runs N            schedules to generate (default 10)
 *   --seed S            fast-check seed (default: random, printed)
 *   --seeds A,B,C       one schedule for each of these seeds, as npm test runs them (with --short: the same schedules)
 *   --path P            replay the counterexample at this path (with --seed), then shrink it further
 *   --replay-path R     the commands' replay hint printed with a counterexample (exact replay)
 *   --short             the npm test profile (3–4 clients, 14 commands) instead of the long one
 *   --max-commands M    commands per schedule (default 36; 14 with --short)
 *   --auth on|off|mixed identity for the schedules (default mixed: drawn per schedule)
 *   --no-shrink         stop at the first failure
 *   --shrink-minutes T  stop shrinking after T minutes (default 20): the best schedule so far is printed
 *   --no-recovery-check do not flag a reconnect that was not recovered after a transport drop
 *   --ignore K1,K2      violation kinds to print but not fail on (to look past known bugs)
 *   --without C1,C2     command kinds not to generate (send, burst, wait, drop-close, drop-reset, replace-links,
 *                       room-restart, server-restart, pause, slow-reader, flood-paused, explicit-disconnect, token-expiry)
 *   --live              serve the working tree instead of a snapshot taken at the start
 *   --verbose           print every client event as it happens
 *   --list-seeds A..B   print the schedules seeds A..B generate (one run each) without running them
 */
import fc from "fast-check";
import {
  COMMAND_KINDS,
  describeSchedule,
  disposeEnv,
  formatStats,
  LONG,
  newEnv,
  runSchedule,
  scheduleArb,
  SHORT,
  type Profile,
  type Schedule,
} from "./schedule.js";

interface Args {
  runs: number;
  seed: number;
  seeds?: number[];
  path?: string;
  replayPath?: string;
  short: boolean;
  maxCommands?: number;
  auth: "on" | "off" | "mixed";
  shrink: boolean;
  shrinkMinutes: number;
  expectRecovery: boolean;
  ignore: string[];
  without: string[];
  live: boolean;
  verbose: boolean;
  listSeeds?: [number, number];
}

function parse(argv: string[]): Args {
  const args: Args = {
    runs: 10,
    seed: (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0,
    short: false,
    auth: "mixed",
    shrink: true,
    shrinkMinutes: 20,
    expectRecovery: true,
    ignore: [],
    without: [],
    live: false,
    verbose: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${flag} needs a value`);
      return next;
    };
    const int = () => {
      const n = Number(value());
      if (!Number.isInteger(n)) throw new Error(`${flag} needs an integer`);
      return n;
    };
    switch (flag) {
      case "--runs": args.runs = int(); break;
      case "--seed": args.seed = int(); break;
      case "--seeds": args.seeds = value().split(",").map(Number); break;
      case "--path": args.path = value(); break;
      case "--replay-path": args.replayPath = value(); break;
      case "--short": args.short = true; break;
      case "--max-commands": args.maxCommands = int(); break;
      case "--auth": {
        const auth = value();
        if (auth !== "on" && auth !== "off" && auth !== "mixed") throw new Error("--auth is on, off or mixed");
        args.auth = auth;
        break;
      }
      case "--no-shrink": args.shrink = false; break;
      case "--shrink-minutes": args.shrinkMinutes = int(); break;
      case "--no-recovery-check": args.expectRecovery = false; break;
      case "--ignore": args.ignore = value().split(",").map((k) => k.trim()).filter(Boolean); break;
      case "--without": {
        args.without = value().split(",").map((k) => k.trim()).filter(Boolean);
        const unknown = args.without.filter((k) => !(COMMAND_KINDS as readonly string[]).includes(k));
        if (unknown.length) throw new Error(`--without: unknown command kind(s) ${unknown.join(", ")} (known: ${COMMAND_KINDS.join(", ")})`);
        break;
      }
      case "--live": args.live = true; break;
      case "--verbose": args.verbose = true; break;
      case "--list-seeds": {
        const [a, b] = value().split("..").map(Number);
        args.listSeeds = [a!, b ?? a!];
        break;
      }
      default: throw new Error(`unknown option ${flag} (see test/chaos/cli.ts)`);
    }
  }
  return args;
}

const print = (line: string) => console.log(line);

function replayPathOf(schedule: Schedule): string | undefined {
  return /replayPath="([^"]*)"/.exec(String(schedule.cmds))?.[1];
}

export async function main(argv: string[]): Promise<number> {
  const args = parse(argv);
  const base = args.short ? SHORT : LONG;
  const profile: Profile = { ...base, auth: args.auth, maxCommands: args.maxCommands ?? base.maxCommands, replayPath: args.replayPath, without: args.without };

  if (args.listSeeds) {
    for (let seed = args.listSeeds[0]; seed <= args.listSeeds[1]; seed++) {
      const [schedule] = fc.sample(scheduleArb(profile), { seed, numRuns: 1 });
      print(`seed ${seed}:\n  ${describeSchedule(schedule!, profile).join("\n  ")}`);
    }
    return 0;
  }

  const env = newEnv({ expectRecovery: args.expectRecovery, ignore: new Set(args.ignore), verbose: args.verbose, live: args.live, print }, profile);
  let shrinkDeadline = Number.POSITIVE_INFINITY;
  const property = fc.asyncProperty(scheduleArb(profile), async (schedule) => {
    if (env.shrinking) {
      if (shrinkDeadline === Number.POSITIVE_INFINITY) shrinkDeadline = Date.now() + args.shrinkMinutes * 60_000;
      // Out of time for shrinking: every further candidate is skipped, so the best so far is reported.
      fc.pre(Date.now() < shrinkDeadline);
    }
    await runSchedule(env, schedule);
  });

  let failed = false;
  let exit = 0;
  const interrupt = () => {
    print("interrupted: stopping wrangler");
    void disposeEnv(env).finally(() => process.exit(130));
  };
  process.once("SIGINT", interrupt);
  process.once("SIGTERM", interrupt);
  const runs: Array<{ seed: number; numRuns: number }> = args.seeds ? args.seeds.map((seed) => ({ seed, numRuns: 1 })) : [{ seed: args.seed, numRuns: args.runs }];
  try {
    for (const { seed, numRuns } of runs) {
      env.shrinking = false;
      env.target = undefined;
      shrinkDeadline = Number.POSITIVE_INFINITY;
      print(`chaos: seed ${seed}, ${args.path ? `replaying path ${args.path}` : `${numRuns} schedule(s)`}, up to ${profile.maxCommands} commands each, identity ${profile.auth}${args.ignore.length ? `, ignoring ${args.ignore.join(", ")}` : ""}${args.without.length ? `, without ${args.without.join(", ")}` : ""}, shrinking ${args.shrink ? `on (≤ ${args.shrinkMinutes} min)` : "off"}`);
      const details = await fc.check(property, {
        seed,
        // A path replays one schedule (the runs after it would be its siblings in the shrink tree).
        numRuns: args.path !== undefined ? 1 : numRuns,
        ...(args.path !== undefined && { path: args.path }),
        endOnFailure: !args.shrink,
      });
      if (!details.failed) continue;
      failed = true;
      exit = 1;
      if (!details.counterexample) {
        print(`FAILED without a counterexample: ${details.interrupted ? "interrupted" : "too many skips"}`);
        continue;
      }
      const [schedule] = details.counterexample;
      const replayPath = replayPathOf(schedule);
      print("");
      print("════════ FAILED ════════");
      print(`seed: ${details.seed}   path: ${details.counterexamplePath}   (${details.numShrinks} shrink step(s) taken)`);
      print(`reproduce: npm run chaos -- --seed ${details.seed} --path "${details.counterexamplePath}"${replayPath ? ` --replay-path "${replayPath}"` : ""}${args.short ? " --short" : ""}${args.maxCommands ? ` --max-commands ${args.maxCommands}` : ""}${args.auth !== "mixed" ? ` --auth ${args.auth}` : ""}${args.ignore.length ? ` --ignore ${args.ignore.join(",")}` : ""}${args.without.length ? ` --without ${args.without.join(",")}` : ""}${args.expectRecovery ? "" : " --no-recovery-check"} --no-shrink`);
      print("");
      print("shrunk schedule:");
      for (const line of describeSchedule(schedule, profile)) print(`  ${line}`);
      print("");
      print("what went wrong (the last failing execution of it):");
      print(details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance));
      print("");
    }
  } finally {
    print("");
    print(failed ? "chaos: FAILED" : "chaos: passed");
    for (const line of formatStats(env.stats)) print(`  ${line}`);
    await disposeEnv(env);
  }
  return exit;
}
