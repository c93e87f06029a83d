/**
 * The fault harness as a fast-check model-based test: a schedule is a configuration (identity
 * on or off, rooms, clients with their path, transports and rooms) and a list of commands
 * (traffic and faults) run with `fc.asyncModelRun` against real socket.io-client connections
 * and the Worker under wrangler. Most commands start something and return (sends, drops,
 * pauses run on while later commands are issued), so faults overlap traffic and each other;
 * `wait` lets time pass. After the last command everything settles and the invariant
 * (invariant.ts) is checked. fast-check gives every schedule a seed and shrinks a failing one.
 */
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { chaosServer, saveLogs, snapshotTree, type ChaosServer } from "./server.js";
import { AUTH_SECRET, FAULT_KINDS, LONG_TIMEOUTS, OBSERVED_KINDS, SHORT_TIMEOUTS, SMALL_LOG, World, type ClientSpec, type Counts, type ScheduleConfig, type Timeouts } from "./world.js";

// ---- the model ------------------------------------------------------------------------

export interface Model {
  readonly config: ScheduleConfig;
  /** Clients disconnected on purpose (socket.disconnect()), waiting for a connect. */
  offline: boolean[];
  serverRestarts: number;
  readonly maxServerRestarts: number;
}

export function initialModel(config: ScheduleConfig, maxServerRestarts: number): Model {
  return { config, offline: config.clients.map(() => false), serverRestarts: 0, maxServerRestarts };
}

abstract class ChaosCommand implements fc.AsyncCommand<Model, World> {
  /** Whether the command applies to this model (a shrunk configuration may have fewer clients or rooms). */
  abstract check(m: Readonly<Model>): boolean;
  /** The model's side of the command (pure). */
  apply(_m: Model): void {}
  /** The real side: start it (most return at once and let it run on). */
  protected abstract act(w: World): Promise<void> | void;
  abstract describe(config: ScheduleConfig): string;
  abstract toString(): string;
  async run(m: Model, w: World): Promise<void> {
    this.apply(m);
    w.note(`» ${this.describe(m.config)}`);
    await this.act(w);
  }
}

/**
 * Commands name clients and rooms by an index taken modulo the configuration's count, so every
 * command applies whatever the configuration (and a shrunk configuration keeps its commands).
 */
const ci = (m: { config: ScheduleConfig }, c: number) => c % m.config.clients.length;
const spec = (config: ScheduleConfig, c: number) => config.clients[c % config.clients.length]!;
const roomOf = (s: ClientSpec, r: number) => s.rooms[r % s.rooms.length]!;
const online = (m: Readonly<Model>, c: number) => !m.offline[ci(m, c)];
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

class Send extends ChaosCommand {
  constructor(readonly c: number, readonly r: number) {
    super();
  }
  check(m: Readonly<Model>) {
    return true;
  }
  act(w: World) {
    w.clients[this.c % w.clients.length]!.send(this.r, 1, 0);
  }
  describe(config: ScheduleConfig) {
    return `send c${this.c % config.clients.length} → r${roomOf(spec(config, this.c), this.r)}`;
  }
  toString() {
    return `send(c${this.c}, room #${this.r})`;
  }
}

class Burst extends ChaosCommand {
  constructor(readonly c: number, readonly r: number, readonly n: number, readonly pad: number) {
    super();
  }
  check(m: Readonly<Model>) {
    return true;
  }
  act(w: World) {
    w.count("burst");
    w.clients[this.c % w.clients.length]!.send(this.r, this.n, this.pad);
  }
  describe(config: ScheduleConfig) {
    return `burst c${this.c % config.clients.length} → r${roomOf(spec(config, this.c), this.r)}: ${this.n} messages of ~${this.pad + 20} B at once`;
  }
  toString() {
    return `burst(c${this.c}, room #${this.r}, ${this.n}, ${this.pad})`;
  }
}

class Wait extends ChaosCommand {
  constructor(readonly ms: number) {
    super();
  }
  check() {
    return true;
  }
  act() {
    return sleep(this.ms);
  }
  describe(config: ScheduleConfig) {
    return `wait ${this.ms} ms`;
  }
  toString() {
    return `wait(${this.ms})`;
  }
}

class Drop extends ChaosCommand {
  constructor(readonly c: number, readonly kind: "close" | "reset") {
    super();
  }
  check(m: Readonly<Model>) {
    return online(m, this.c);
  }
  act(w: World) {
    if (w.clients[this.c % w.clients.length]!.drop(this.kind)) w.count(this.kind === "close" ? "drop-close" : "drop-reset");
    else w.note(`  (c${this.c % w.clients.length} not connected${this.kind === "reset" ? " over WebSocket" : ""}: nothing dropped)`);
  }
  describe(config: ScheduleConfig) {
    return `drop c${this.c % config.clients.length}'s transport (${this.kind === "close" ? "clean close: engine.close()" : "TCP reset: resetAndDestroy()"})`;
  }
  toString() {
    return `drop(c${this.c}, ${this.kind})`;
  }
}

class ReplaceLinks extends ChaosCommand {
  constructor(readonly c: number) {
    super();
  }
  check(m: Readonly<Model>) {
    return spec(m.config, this.c).path === "gateway" && online(m, this.c);
  }
  async act(w: World) {
    if (await w.clients[this.c % w.clients.length]!.replaceLinks()) w.count("replace-links");
    else w.note(`  (c${this.c % w.clients.length}: no links replaced: not connected, or its session is still on polling)`);
  }
  describe(config: ScheduleConfig) {
    return `replace c${this.c % config.clients.length}'s room links (watchdog)`;
  }
  toString() {
    return `replaceLinks(c${this.c})`;
  }
}

class RestartRoom extends ChaosCommand {
  constructor(readonly r: number) {
    super();
  }
  check(m: Readonly<Model>) {
    return true;
  }
  act(w: World) {
    return w.restartRoom(this.r);
  }
  describe(config: ScheduleConfig) {
    return `restart room r${this.r % config.rooms}'s object`;
  }
  toString() {
    return `restartRoom(r${this.r})`;
  }
}

class RestartServer extends ChaosCommand {
  constructor(readonly downMs: number) {
    super();
  }
  check(m: Readonly<Model>) {
    return m.serverRestarts < m.maxServerRestarts;
  }
  override apply(m: Model) {
    m.serverRestarts++;
  }
  act(w: World) {
    return w.restartServer(this.downMs);
  }
  describe(config: ScheduleConfig) {
    return `restart the server (wrangler stopped, ${this.downMs} ms, started on the same state)`;
  }
  toString() {
    return `restartServer(${this.downMs})`;
  }
}

class Pause extends ChaosCommand {
  constructor(readonly c: number, readonly ms: number) {
    super();
  }
  check(m: Readonly<Model>) {
    return online(m, this.c);
  }
  act(w: World) {
    if (w.clients[this.c % w.clients.length]!.pause(this.ms)) w.count("pause");
    else w.note(`  (c${this.c % w.clients.length} not on WebSocket: not paused)`);
  }
  describe(config: ScheduleConfig) {
    return `c${this.c % config.clients.length} stops reading its socket for ${this.ms} ms`;
  }
  toString() {
    return `pause(c${this.c}, ${this.ms})`;
  }
}

class Slow extends ChaosCommand {
  constructor(readonly c: number, readonly times: number, readonly ms: number) {
    super();
  }
  check(m: Readonly<Model>) {
    return online(m, this.c);
  }
  act(w: World) {
    if (w.clients[this.c % w.clients.length]!.slow(this.times, this.ms)) w.count("slow-reader");
    else w.note(`  (c${this.c % w.clients.length} not on WebSocket, or slow already: not slowed)`);
  }
  describe(config: ScheduleConfig) {
    return `c${this.c % config.clients.length} reads slowly: paused ${this.ms} ms, ${this.times} times`;
  }
  toString() {
    return `slow(c${this.c}, ${this.times}, ${this.ms})`;
  }
}

/** A reader that stops reading while its room is flooded: the slow-reader cap's case. */
class FloodPaused extends ChaosCommand {
  constructor(readonly c: number, readonly r: number, readonly ms: number, readonly n: number, readonly pad: number) {
    super();
  }
  check(m: Readonly<Model>) {
    return online(m, this.c);
  }
  act(w: World) {
    const reader = w.clients[this.c % w.clients.length]!;
    const pr = reader.prs[this.r % reader.prs.length]!;
    if (reader.pause(this.ms)) w.count("pause");
    else w.note(`  (c${this.c % w.clients.length} not on WebSocket: not paused)`);
    const sender = w.clients.find((other) => other !== reader && other.prs.includes(pr)) ?? reader;
    w.count("burst");
    sender.send(sender.prs.indexOf(pr), this.n, this.pad);
  }
  describe(config: ScheduleConfig) {
    const reader = spec(config, this.c);
    const room = roomOf(reader, this.r);
    const senderIndex = config.clients.findIndex((other, index) => index !== this.c % config.clients.length && other.rooms.includes(room));
    const sender = senderIndex === -1 ? this.c % config.clients.length : senderIndex;
    return `c${this.c % config.clients.length} stops reading for ${this.ms} ms while c${sender} sends ${this.n} messages of ~${this.pad + 20} B to r${room}`;
  }
  toString() {
    return `floodPaused(c${this.c}, room #${this.r}, ${this.ms}, ${this.n}, ${this.pad})`;
  }
}

class Disconnect extends ChaosCommand {
  constructor(readonly c: number) {
    super();
  }
  check(m: Readonly<Model>) {
    return online(m, this.c);
  }
  override apply(m: Model) {
    m.offline[ci(m, this.c)] = true;
  }
  act(w: World) {
    w.count("explicit-disconnect");
    w.clients[this.c % w.clients.length]!.disconnect();
  }
  describe(config: ScheduleConfig) {
    return `c${this.c % config.clients.length}: socket.disconnect()`;
  }
  toString() {
    return `disconnect(c${this.c})`;
  }
}

class Reconnect extends ChaosCommand {
  constructor(readonly c: number) {
    super();
  }
  check(m: Readonly<Model>) {
    return !online(m, this.c);
  }
  override apply(m: Model) {
    m.offline[ci(m, this.c)] = false;
  }
  act(w: World) {
    w.clients[this.c % w.clients.length]!.reconnect();
  }
  describe(config: ScheduleConfig) {
    return `c${this.c % config.clients.length}: socket.connect()`;
  }
  toString() {
    return `connect(c${this.c})`;
  }
}

class ExpireToken extends ChaosCommand {
  constructor(readonly c: number) {
    super();
  }
  check(m: Readonly<Model>) {
    return m.config.auth && online(m, this.c);
  }
  async act(w: World) {
    if (await w.clients[this.c % w.clients.length]!.expireToken()) w.count("token-expiry");
    else w.note(`  (c${this.c % w.clients.length} not connected: no token expiry)`);
  }
  describe(config: ScheduleConfig) {
    return `c${this.c % config.clients.length}'s token expires (it reconnects with one valid for ~3 s; the server ends it then)`;
  }
  toString() {
    return `expireToken(c${this.c})`;
  }
}

// ---- the arbitraries --------------------------------------------------------------------

export interface Profile {
  timeouts: Timeouts;
  maxClients: number;
  maxRooms: number;
  maxCommands: number;
  maxServerRestarts: number;
  auth: "on" | "off" | "mixed";
  /** fast-check's replay hint for the commands (printed with a counterexample). */
  replayPath?: string;
  /** Command kinds left out of generation (COMMAND_KINDS). */
  without?: string[];
}

/** npm test: few clients and rooms, short schedules. */
export const SHORT: Profile = { timeouts: SHORT_TIMEOUTS, maxClients: 4, maxRooms: 3, maxCommands: 14, maxServerRestarts: 1, auth: "mixed" };
/** npm run chaos: longer schedules. */
export const LONG: Profile = { timeouts: LONG_TIMEOUTS, maxClients: 4, maxRooms: 3, maxCommands: 36, maxServerRestarts: 2, auth: "mixed" };

const MAX_CLIENT_INDEX = 3;
const MAX_ROOM_INDEX = 2;

function configArb(profile: Profile): fc.Arbitrary<ScheduleConfig> {
  const auth = profile.auth === "mixed" ? fc.boolean() : fc.constant(profile.auth === "on");
  const client = fc.record({ direct: fc.boolean(), polling: fc.boolean(), mask: fc.integer({ min: 1, max: 7 }) });
  return fc
    .record({
      auth,
      rooms: fc.integer({ min: 1, max: profile.maxRooms }),
      clients: fc.array(client, { minLength: 2, maxLength: profile.maxClients }),
      // One schedule in four with a short recovery log (the messages_lost and "log exceeded" paths).
      smallLog: fc.nat({ max: 3 }).map((n) => n === 0),
    })
    .map(({ auth, rooms, clients, smallLog }) => ({
      auth,
      smallLog,
      rooms,
      clients: clients.map(({ direct, polling, mask }): ClientSpec => {
        const chosen = [0, 1, 2].filter((room) => room < rooms && (mask & (1 << room)) !== 0);
        const list = chosen.length > 0 ? chosen : [0];
        return { path: direct ? "direct" : "gateway", polling, rooms: direct ? [list[0]!] : list };
      }),
    }));
}

/** Command kinds, for --without (generation leaves them out). */
export const COMMAND_KINDS = ["send", "burst", "wait", "drop-close", "drop-reset", "replace-links", "room-restart", "server-restart", "pause", "slow-reader", "flood-paused", "explicit-disconnect", "token-expiry"] as const;

function commandArb(without: ReadonlySet<string> = new Set()): fc.Arbitrary<ChaosCommand> {
  const c = fc.nat({ max: MAX_CLIENT_INDEX });
  const r = fc.nat({ max: MAX_ROOM_INDEX });
  const drops = (["close", "reset"] as const).filter((kind) => !without.has(`drop-${kind}`));
  const all: Array<{ kind: string; weight: number; arbitrary: fc.Arbitrary<ChaosCommand> }> = [
    { kind: "send", weight: 5, arbitrary: fc.tuple(c, r).map(([c, r]) => new Send(c, r)) },
    { kind: "burst", weight: 2, arbitrary: fc.tuple(c, r, fc.integer({ min: 5, max: 30 }), fc.constantFrom(0, 300, 1200, 3000)).map(([c, r, n, pad]) => new Burst(c, r, n, pad)) },
    { kind: "wait", weight: 5, arbitrary: fc.integer({ min: 50, max: 1500 }).map((ms) => new Wait(ms)) },
    ...(drops.length ? [{ kind: "drop", weight: 3, arbitrary: fc.tuple(c, fc.constantFrom(...drops)).map(([c, kind]): ChaosCommand => new Drop(c, kind)) }] : []),
    { kind: "replace-links", weight: 2, arbitrary: c.map((c) => new ReplaceLinks(c)) },
    { kind: "room-restart", weight: 2, arbitrary: r.map((r) => new RestartRoom(r)) },
    { kind: "server-restart", weight: 1, arbitrary: fc.integer({ min: 0, max: 1000 }).map((ms) => new RestartServer(ms)) },
    { kind: "pause", weight: 1, arbitrary: fc.tuple(c, fc.integer({ min: 300, max: 4000 })).map(([c, ms]) => new Pause(c, ms)) },
    { kind: "slow-reader", weight: 1, arbitrary: fc.tuple(c, fc.integer({ min: 3, max: 10 }), fc.integer({ min: 50, max: 400 })).map(([c, n, ms]) => new Slow(c, n, ms)) },
    { kind: "explicit-disconnect", weight: 1, arbitrary: c.map((c) => new Disconnect(c)) },
    { kind: "explicit-disconnect", weight: 2, arbitrary: c.map((c) => new Reconnect(c)) },
    { kind: "token-expiry", weight: 1, arbitrary: c.map((c) => new ExpireToken(c)) },
    {
      kind: "flood-paused",
      weight: 2,
      arbitrary: fc.tuple(c, r, fc.integer({ min: 300, max: 3000 }), fc.integer({ min: 10, max: 40 }), fc.constantFrom(1200, 3000)).map(([c, r, ms, n, pad]) => new FloodPaused(c, r, ms, n, pad)),
    },
  ];
  return fc.oneof(...all.filter((entry) => !without.has(entry.kind)).map(({ weight, arbitrary }) => ({ weight, arbitrary })));
}

export interface Schedule {
  config: ScheduleConfig;
  cmds: Iterable<fc.AsyncCommand<Model, World>>;
}

export function scheduleArb(profile: Profile): fc.Arbitrary<Schedule> {
  // Unbiased: every schedule is drawn at full size, not small ones first (each seed is a real schedule).
  return fc.noBias(
    fc.record({
      config: configArb(profile),
      cmds: fc.commands([commandArb(new Set(profile.without))], { maxCommands: profile.maxCommands, size: "max", replayPath: profile.replayPath }),
    }),
  );
}

// ---- printing ---------------------------------------------------------------------------

export function describeConfig(config: ScheduleConfig): string {
  const clients = config.clients.map((c, i) => `c${i} ${c.path} ${c.polling ? "polling+upgrade" : "websocket"} in ${c.rooms.map((r) => `r${r}`).join("+")}`);
  return `identity ${config.auth ? "on" : "off"}, ${config.rooms} room(s)${config.smallLog ? `, recovery log of ${SMALL_LOG} messages` : ""}; ${clients.join("; ")}`;
}

/** The commands that run for this configuration (those whose check passes, as asyncModelRun runs them), one a line. */
export function describeSchedule(schedule: Schedule, profile: Profile): string[] {
  const model = initialModel(schedule.config, profile.maxServerRestarts);
  const lines = [`config: ${describeConfig(schedule.config)}`];
  let n = 0;
  for (const wrapped of schedule.cmds) {
    // fast-check hands the commands wrapped (CommandWrapper, the command in `.cmd`).
    const cmd = ((wrapped as { cmd?: ChaosCommand }).cmd ?? wrapped) as ChaosCommand;
    if (!cmd.check(model)) continue;
    cmd.apply(model);
    lines.push(`${String(++n).padStart(3)}. ${cmd.describe(schedule.config)}`);
  }
  lines.push("     then: settle (readers resumed, everyone reconnected and re-joined, sends answered), one marker per room, check");
  return lines;
}

// ---- running schedules --------------------------------------------------------------------

export interface ChaosOptions {
  expectRecovery: boolean;
  /** Violation kinds printed but not failing (to look for other bugs while known ones are being fixed). */
  ignore?: Set<string>;
  verbose: boolean;
  /** Serve the working tree instead of a snapshot of it. */
  live: boolean;
  print: (line: string) => void;
}

export interface Stats {
  /** Schedules executed (the first run of each, and every shrink attempt). */
  executions: number;
  /** Distinct generated schedules (not counting shrink attempts). */
  generated: number;
  failedExecutions: number;
  faults: Counts;
  observed: Counts;
  violations: Counts;
  /** Executions that showed only ignored kinds (--ignore). */
  ignored: Counts;
  startedAt: number;
}

export interface ChaosEnv {
  options: ChaosOptions;
  profile: Profile;
  stats: Stats;
  /** One server per identity mode, both serving the same tree. */
  servers: Map<string, ChaosServer>;
  /** The tree they serve: a snapshot taken at the first start (see server.ts), or the working tree. */
  root?: string;
  /** Set once a schedule failed: later executions are shrink attempts. */
  shrinking: boolean;
  /**
   * While shrinking: the violation kinds of the first failure. A shrink candidate counts as
   * failing only if it shows one of them, so the shrinker does not wander off to another bug
   * (other failures it meets are printed, and counted).
   */
  target?: Set<string>;
  lastFailure?: { tag: string; report: string; logPath: string; schedule: string[] };
}

export function serverVars(auth: boolean, smallLog = false): Record<string, string> {
  return {
    // Dead peers noticed within ~2 s.
    PING_INTERVAL_MS: "1000",
    PING_TIMEOUT_MS: "1000",
    DIRECT_PING_INTERVAL_MS: "1000",
    // Long enough that every schedule's reconnects are inside it, and nothing falls out of the logs.
    RECOVERY_WINDOW_MS: "600000",
    RECOVERY_MAX_MESSAGES: smallLog ? String(SMALL_LOG) : "100000",
    // Bursts are not rate limited.
    RATE_LIMIT_PER_SECOND: "5000",
    RATE_LIMIT_BURST: "5000",
    // Small, so bursts at paused and slow readers reach it; a reader that stops is cut after
    // half a second (before the heartbeat's 2 s would notice it).
    MAX_BACKLOG_BYTES: "16384",
    SLOW_READER_TIMEOUT_MS: "500",
    // Room restarts and link replacements come many a minute here: resumes are not rationed.
    MAX_RESUMES_PER_MINUTE: "10000",
    FAULT_INJECTION: "on",
    ...(auth && { AUTH_SECRET, CLOCK_SKEW_SECONDS: "0" }),
  };
}

export function newEnv(options: ChaosOptions, profile: Profile): ChaosEnv {
  return {
    options,
    profile,
    shrinking: false,
    servers: new Map(),
    stats: {
      executions: 0,
      generated: 0,
      failedExecutions: 0,
      faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])),
      observed: Object.fromEntries(OBSERVED_KINDS.map((k) => [k, 0])),
      violations: {},
      ignored: {},
      startedAt: Date.now(),
    },
  };
}

async function serverFor(env: ChaosEnv, config: ScheduleConfig): Promise<ChaosServer> {
  const { auth, smallLog } = config;
  const wanted = serverVars(auth, smallLog);
  const key = JSON.stringify(wanted);
  const existing = env.servers.get(key);
  if (existing) {
    if (!existing.running) await existing.start();
    return existing;
  }
  env.root ??= env.options.live ? process.cwd() : snapshotTree();
  const started = Date.now();
  const server = await chaosServer(wanted, env.root);
  env.servers.set(key, server);
  env.options.print(`  wrangler dev (identity ${auth ? "on" : "off"}${smallLog ? `, RECOVERY_MAX_MESSAGES ${SMALL_LOG}` : ""}) serving ${server.url} from ${env.options.live ? "the working tree" : `a snapshot of it (${env.root})`} after ${Date.now() - started} ms`);
  return server;
}

export async function disposeEnv(env: ChaosEnv): Promise<void> {
  const servers = [...env.servers.values()];
  env.servers.clear();
  await Promise.all(servers.map((server) => server.dispose()));
  if (env.root && !env.options.live) rmSync(env.root, { recursive: true, force: true });
  env.root = undefined;
}

function add(into: Counts, from: Counts): void {
  for (const [key, value] of Object.entries(from)) into[key] = (into[key] ?? 0) + value;
}

/** One schedule: the property fast-check checks. Throws a readable report on a violation. */
export async function runSchedule(env: ChaosEnv, schedule: Schedule): Promise<void> {
  const { stats, options } = env;
  stats.executions++;
  if (!env.shrinking) stats.generated++;
  const server = await serverFor(env, schedule.config);
  const world = new World(server, schedule.config, { expectRecovery: options.expectRecovery, timeouts: env.profile.timeouts, verbose: options.verbose, print: options.print });
  const label = env.shrinking ? `shrink #${stats.executions - stats.generated}` : `schedule #${stats.generated}`;
  const started = Date.now();
  options.print(`▶ ${label} (${world.tag}): ${describeConfig(schedule.config)}`);
  try {
    await world.start();
    await fc.asyncModelRun(() => ({ model: initialModel(schedule.config, env.profile.maxServerRestarts), real: world }), schedule.cmds);
    await world.settle();
    world.check();
  } catch (error) {
    world.violation({ kind: "harness", text: `the schedule could not run: ${String((error as Error)?.stack ?? error)}` });
  } finally {
    await world.close();
  }
  add(stats.faults, world.faults);
  add(stats.observed, world.observed);
  const injected = Object.entries(world.faults).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(", ") || "none";
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (world.violations.length === 0) {
    options.print(`  ✓ ${label} ok in ${seconds} s; faults: ${injected}; ${world.observed.messages} messages received`);
    return;
  }
  const kinds = [...new Set(world.violations.map((v) => v.kind))];
  const ignored = (kind: string) => options.ignore !== undefined && (options.ignore.has(kind) || options.ignore.has(kind.split(":")[0]!));
  if (options.ignore && kinds.every(ignored)) {
    options.print(`  ~ ${label} ok but for ignored violations (${kinds.join(", ")}) in ${seconds} s; faults: ${injected}`);
    for (const v of world.violations.slice(0, 3)) options.print(`      [${v.kind}] ${v.client ?? ""}${v.pr === undefined ? "" : ` room ${v.pr}`}: ${v.text.slice(0, 300)}`);
    for (const kind of kinds) stats.ignored[kind] = (stats.ignored[kind] ?? 0) + 1;
    return;
  }
  stats.failedExecutions++;
  for (const kind of kinds) stats.violations[kind] = (stats.violations[kind] ?? 0) + 1;
  const logPath = saveLogs(server, `pr-rooms-chaos-${world.tag}`);
  const described = describeSchedule(schedule, env.profile);
  const report = world.report();
  const reportPath = join(tmpdir(), `pr-rooms-chaos-${world.tag}.report.txt`);
  writeFileSync(reportPath, `${described.join("\n")}\n\n${report}\n\nwrangler log: ${logPath}\n`);
  const onTarget = env.target === undefined || kinds.some((kind) => env.target!.has(kind));
  options.print(`  ✗ ${label} ${onTarget ? "FAILED" : "failed (another bug: not a shrink of the first failure)"} in ${seconds} s: ${kinds.join(", ")}; faults: ${injected}; report: ${reportPath}`);
  for (const v of world.violations.slice(0, 5)) options.print(`      [${v.kind}] ${v.client ?? ""}${v.pr === undefined ? "" : ` room ${v.pr}`}: ${v.text.slice(0, 400)}`);
  if (!onTarget) return;
  env.lastFailure = { tag: world.tag, report, logPath, schedule: described };
  env.shrinking = true;
  env.target ??= new Set(kinds);
  throw new Error(`${world.violations.length} violation(s): ${kinds.join(", ")}\n\nschedule:\n${described.join("\n")}\n\n${report}\n\nwrangler log: ${logPath}\nthis report: ${reportPath}`);
}

export function formatStats(stats: Stats): string[] {
  const faults = FAULT_KINDS.map((k) => `${k}: ${stats.faults[k] ?? 0}`).join(", ");
  const observed = Object.entries(stats.observed).map(([k, n]) => `${k}: ${n}`).join(", ");
  const violations = Object.entries(stats.violations).map(([k, n]) => `${k}: ${n}`).join(", ") || "none";
  return [
    `schedules run: ${stats.generated} generated, ${stats.executions} executed in all (with shrink attempts), ${stats.failedExecutions} failed, in ${((Date.now() - stats.startedAt) / 1000).toFixed(0)} s`,
    `faults injected: ${faults}`,
    `observed: ${observed}`,
    `failing executions by violation kind: ${violations}`,
    ...(Object.keys(stats.ignored).length ? [`executions with ignored violations only: ${Object.entries(stats.ignored).map(([k, n]) => `${k}: ${n}`).join(", ")}`] : []),
  ];
}
