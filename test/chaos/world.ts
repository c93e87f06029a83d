/**
 * The system under test for one schedule: real socket.io-client connections (the API
 * document's client) against the Worker under wrangler, the faults, the final settling,
 * and the invariant over what every client saw.
 */
import type { Socket as NetSocket } from "node:net";
import { io, type Socket } from "socket.io-client";
import { signToken } from "../shared/token.js";
import { until } from "../shared/until.js";
import { checkRoom, type Acked, type ClientRoomLog, type Epoch, type EpochCause, type Violation } from "./invariant.js";
import type { ChaosServer } from "./server.js";

export const AUTH_SECRET = "chaos-harness-secret-that-is-long-enough-0123456789";

/** One client of a schedule. */
export interface ClientSpec {
  path: "gateway" | "direct";
  /** Default transports (polling, then the upgrade to WebSocket) instead of WebSocket only. */
  polling: boolean;
  /** Room indices (gateway: 1–3; direct: exactly one). */
  rooms: number[];
}

export interface ScheduleConfig {
  /** Identity on: every client holds a token (and token expiry is a fault). */
  auth: boolean;
  /**
   * Rooms keep only SMALL_LOG messages for recovery (RECOVERY_MAX_MESSAGES): a connection away
   * for more is not recovered, and a room link resumed past the log is told `messages_lost`.
   */
  smallLog: boolean;
  rooms: number;
  clients: ClientSpec[];
}

/** Fault kinds, as counted and reported. */
export const FAULT_KINDS = [
  "drop-close",
  "drop-reset",
  "replace-links",
  "room-restart",
  "server-restart",
  "pause",
  "slow-reader",
  "burst",
  "explicit-disconnect",
  "token-expiry",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** What a run observed besides faults (exceptions used, reconnects). */
export const OBSERVED_KINDS = [
  "messages",
  "reconnects-recovered",
  "reconnects-not-recovered",
  "messages_lost-notices",
  "server-disconnects",
  "link-lost",
  "resends",
  "not-recovered-log-exceeded",
  "recovered-after-undeliverable-disconnect",
] as const;
export type ObservedKind = (typeof OBSERVED_KINDS)[number];

export type Counts = Record<string, number>;

export interface Timeouts {
  /** Settling: every background send answered, every client back (each bounded by this). */
  settleMs: number;
  /** A marker reaching every member. */
  markerMs: number;
}

export const LONG_TIMEOUTS: Timeouts = { settleMs: 60_000, markerMs: 20_000 };
export const SHORT_TIMEOUTS: Timeouts = { settleMs: 30_000, markerMs: 10_000 };

export interface WorldOptions {
  /** Flag a reconnect that was not recovered after a transport drop (README: it must be). */
  expectRecovery: boolean;
  timeouts: Timeouts;
  verbose: boolean;
  print: (line: string) => void;
}

const ACK_TIMEOUT_MS = 8_000;
const JOIN_RETRY_LIMIT = 30;
const MARKER_ROUNDS = 3;
/** RECOVERY_MAX_MESSAGES with `smallLog`. */
export const SMALL_LOG = 10;
/** How long past its token's `exp` a connection may last (the server's timer, the DISCONNECT's way to the client). */
const EXPIRY_GRACE_MS = 2_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Reasons socket.io-client gives for a connection that ended without anyone meaning to end it. */
const TRANSPORT_REASONS = new Set(["transport close", "transport error", "ping timeout", "parse error", "forced close"]);

let scheduleCounter = 0;

export class World {
  readonly t0 = Date.now();
  readonly tag = `s${++scheduleCounter}-${Math.random().toString(36).slice(2, 6)}`;
  readonly prs: number[];
  readonly clients: ChaosClient[] = [];
  readonly acks = new Map<number, Acked[]>();
  readonly violations: Violation[] = [];
  readonly faults: Counts = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0]));
  readonly observed: Counts = Object.fromEntries(OBSERVED_KINDS.map((k) => [k, 0]));
  /** The schedule as it ran, with times. */
  readonly timeline: string[] = [];
  private readonly tasks = new Set<Promise<unknown>>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  /** Set when settling starts: background work must be done by then. */
  deadline = Number.POSITIVE_INFINITY;
  closed = false;
  private messageCounter = 0;
  markers = new Map<number, number>();

  constructor(
    readonly server: ChaosServer,
    readonly config: ScheduleConfig,
    readonly options: WorldOptions,
  ) {
    // Fresh rooms for every schedule: the server keeps state between schedules (and restarts).
    const base = 1_000_000 + Math.floor(Math.random() * 8_000_000) * 10;
    this.prs = Array.from({ length: config.rooms }, (_, i) => base + i);
  }

  get url(): string {
    return this.server.url;
  }

  now(): number {
    return Date.now() - this.t0;
  }

  note(line: string): void {
    this.timeline.push(`${String(this.now()).padStart(6)} ms  ${line}`);
    if (this.options.verbose) this.options.print(`    ${this.tag} ${this.now()} ms ${line}`);
  }

  violation(v: Violation): void {
    this.violations.push(v);
    this.note(`VIOLATION [${v.kind}] ${v.client ?? ""} ${v.pr === undefined ? "" : `pr ${v.pr}`}: ${v.text}`);
  }

  count(kind: FaultKind | ObservedKind, n = 1): void {
    if (kind in this.faults) this.faults[kind]! += n;
    else this.observed[kind] = (this.observed[kind] ?? 0) + n;
  }

  /** Background work (sends, slow readers): settled before the check, bounded by the deadline. */
  track(task: Promise<unknown>): void {
    const tracked = task.catch((error) => this.violation({ kind: "harness", text: `background task failed: ${String(error?.stack ?? error)}` }));
    this.tasks.add(tracked);
    void tracked.finally(() => this.tasks.delete(tracked));
  }

  later(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.closed) run();
    }, ms);
    this.timers.add(timer);
  }

  nextText(client: ChaosClient, pad: number): { text: string; clientMessageId: string } {
    const n = ++this.messageCounter;
    const head = `${this.tag} ${client.name} #${n}`;
    return { text: pad > 0 ? `${head} ${"x".repeat(pad)}` : head, clientMessageId: `${this.tag}-${client.name}-${n}` };
  }

  /** The highest seq of `pr` acknowledged to any sender so far. */
  ackedHead(pr: number): number {
    return Math.max(0, ...(this.acks.get(pr) ?? []).map((ack) => ack.seq));
  }

  acked(pr: number, ack: Acked): void {
    let list = this.acks.get(pr);
    if (!list) this.acks.set(pr, (list = []));
    list.push(ack);
  }

  async token(username: string, ttlSeconds: number): Promise<string> {
    return signToken(AUTH_SECRET, { sub: username, exp: nowSeconds() + ttlSeconds });
  }

  // ---- lifecycle ---------------------------------------------------------------------

  /** Connects every client and waits until each has joined its rooms. */
  async start(): Promise<void> {
    this.note(`rooms ${this.prs.map((pr, i) => `r${i}=${pr}`).join(" ")}`);
    for (const [index, spec] of this.config.clients.entries()) {
      const client = new ChaosClient(this, index, spec);
      this.clients.push(client);
      await client.open();
    }
    await until(() => this.clients.every((c) => c.ready()), 30_000, () => `every client connected and joined (${this.clients.filter((c) => !c.ready()).map((c) => c.name).join(", ")} not)`);
    this.note("all clients connected and joined");
  }

  /**
   * Lets everything settle: readers resumed, disconnected clients back, every send answered,
   * every client connected and (re)joined, then one marker per room that every member must get.
   */
  async settle(): Promise<void> {
    this.note("settle: resume, reconnect, finish sends");
    this.deadline = Date.now() + this.options.timeouts.settleMs;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const client of this.clients) client.release();
    if (!this.server.running) await this.server.start();
    const drained = until(() => this.tasks.size === 0, this.options.timeouts.settleMs, () => `background sends to finish (${this.tasks.size} left)`);
    await drained.catch((error) => this.violation({ kind: "liveness", text: String(error.message) }));
    // Marker rounds: a member that drops and comes back fresh while a marker is on its way owes
    // nothing from before (its new membership starts after it), so the round is repeated.
    for (let round = 1; round <= MARKER_ROUNDS; round++) {
      const ready = until(() => this.clients.every((c) => c.ready()), this.options.timeouts.settleMs, () =>
        `every client connected and joined: ${this.clients.filter((c) => !c.ready()).map((c) => c.describeState()).join("; ")}`);
      const ok = await ready.then(() => true, (error) => (this.violation({ kind: "liveness", text: String(error.message) }), false));
      if (!ok) return;
      this.note(`settle: markers, round ${round}`);
      let again = false;
      await Promise.all(
        this.prs.map(async (pr) => {
          const members = this.clients.filter((c) => c.prs.includes(pr));
          if (members.length === 0) return;
          const seq = await members[0]!.sendOnce(pr, 0, "marker");
          if (seq === undefined) return;
          this.markers.set(pr, seq);
          const settled = (c: ChaosClient) => c.hasSeq(pr, seq) || c.joinedAfter(pr, seq);
          await until(() => members.every(settled), this.options.timeouts.markerMs, () =>
            `the marker (seq ${seq}) at every member of ${pr}: missing at ${members.filter((c) => !settled(c)).map((c) => c.name).join(", ")}`,
          ).catch((error) => this.violation({ kind: "marker", pr, text: String(error.message) }));
          if (members.some((c) => !c.hasSeq(pr, seq) && c.joinedAfter(pr, seq))) again = true;
        }),
      );
      if (!again) break;
      this.note("settle: a member came back fresh after a marker; another round");
    }
    this.note("settled");
    await this.serverLogsCaughtUp();
  }

  /**
   * wrangler prints the Worker's log lines a little after the fact: before they are read (to tell
   * why a connection was not recovered, or whether the server saw a DISCONNECT), wait until the
   * log has more than the `connect` of every client's current session.
   */
  private async serverLogsCaughtUp(): Promise<void> {
    const sids = this.clients.map((c) => c.currentSid).filter((sid): sid is string => sid !== undefined);
    await until(() => {
      const lines = this.server.logs().split("\n");
      // Past its `connect` line: its join, resume or recovery (the last thing a session does here).
      return sids.every((sid) => lines.some((line) => line.includes(`"sid":"${sid}"`) && !line.includes('"evt":"connect"')));
    }, 3_000, "the server's log to catch up", 50).catch(() => this.note("the server's log did not show every client's last join within 3 s"));
  }

  /**
   * A connection that came back not recovered: why, as the server logged the session that
   * ended (a protocol error, a slow-reader cut, a restart before it logged anything…). The
   * kind becomes `not-recovered:<why>`, so different causes are told apart (and shrunk apart).
   */
  private explainNotRecovered(): void {
    const lines = this.server.logs().split("\n");
    for (const v of this.violations) {
      if (v.kind !== "not-recovered" || !v.sid) continue;
      const mine = lines.filter((line) => line.includes(`"sid":"${v.sid}"`));
      const protocol = mine.find((line) => line.includes('"evt":"protocol_error"'));
      const slow = mine.find((line) => line.includes('"evt":"slow_reader"'));
      const disconnect = mine.find((line) => line.includes('"evt":"disconnect"'));
      const reasonOf = (line: string | undefined) => (line ? /"(?:reason|why)":"([^"]*)"/.exec(line)?.[1] : undefined);
      const why = protocol ? `protocol error (${reasonOf(protocol)})` : slow ? "slow-reader cut" : disconnect ? `server saw ${reasonOf(disconnect)}` : "server logged no disconnect (restarted?)";
      v.kind = `not-recovered:${protocol ? "protocol-error" : slow ? "slow-reader" : disconnect ? reasonOf(disconnect)?.replace(/ /g, "-") : "no-disconnect-logged"}`;
      v.text += `; the server: ${why}`;
    }
  }

  /**
   * A `socket.disconnect()` the server never processed is, for the server, a transport end:
   * recovering it is what socket.io would do too. That is so when the server logged nothing
   * about the session's end (it was stopped at that very moment), or ended the session itself
   * first for a recoverable reason (a slow-reader cut of a paused reader, a ping timeout): the
   * DISCONNECT then reached a closed socket. Only a disconnect the server saw as the client's
   * makes a recovery a violation.
   */
  private excuseUnprocessedDisconnects(): void {
    const logs = this.server.logs();
    const kept = this.violations.filter((v) => {
      if (v.kind !== "recovered-after-disconnect" || !v.sid) return true;
      const ended = logs.split("\n").filter((line) => line.includes(`"evt":"disconnect","sid":"${v.sid}"`));
      const recoverable = /"reason":"(slow reader|ping timeout|transport close|transport error)"/;
      if (ended.length > 0 && !ended.every((line) => recoverable.test(line))) return true;
      this.count("recovered-after-undeliverable-disconnect");
      return false;
    });
    this.violations.length = 0;
    this.violations.push(...kept);
  }

  /** What the server logged about this schedule's sessions, counted (shows the faults took effect). */
  private observeServer(): void {
    const ids = this.clients.flatMap((c) => [...c.ids]);
    const wanted = ["slow_reader", "messages_lost", "room_link_lost", "protocol_error", "superseded", "not_recovered", "recovered", "upgrade"];
    for (const line of this.server.logs().split("\n")) {
      const evt = /"evt":"([a-z_]+)"/.exec(line)?.[1];
      if (!evt || !wanted.includes(evt) || !ids.some((id) => line.includes(`"${id}"`))) continue;
      this.observed[`server:${evt}`] = (this.observed[`server:${evt}`] ?? 0) + 1;
    }
  }

  /** The invariant, per room and per client. */
  check(): Violation[] {
    this.observeServer();
    this.excuseUnprocessedDisconnects();
    if (this.config.smallLog) {
      const excused = new Set(this.clients.flatMap((c) => c.excusedNotRecovered(SMALL_LOG)));
      if (excused.size > 0) {
        this.count("not-recovered-log-exceeded", excused.size);
        const kept = this.violations.filter((v) => !excused.has(v));
        this.violations.length = 0;
        this.violations.push(...kept);
      }
    }
    this.explainNotRecovered();
    for (const pr of this.prs) {
      const members = this.clients.filter((c) => c.prs.includes(pr));
      if (members.length === 0) continue;
      const logs: ClientRoomLog[] = members.map((c) => c.logOf(pr));
      const found = checkRoom({ pr, acks: this.acks.get(pr) ?? [], marker: this.markers.get(pr), members: members.map((c) => c.name) }, logs, {
        ...(this.config.smallLog && { dedupeWindow: SMALL_LOG }),
        excused: this.observed,
      });
      for (const v of found) this.violations.push(v);
    }
    return this.violations;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.deadline = 0;
    for (const timer of this.timers) clearTimeout(timer);
    for (const client of this.clients) client.close();
    await until(() => this.tasks.size === 0, 15_000, "background tasks to stop").catch(() => undefined);
  }

  // ---- faults ------------------------------------------------------------------------

  async postFault(path: string): Promise<{ ok: boolean; body: any }> {
    try {
      const response = await fetch(`${this.url}${path}`, { method: "POST", signal: AbortSignal.timeout(15_000) });
      const body = await response.json().catch(() => undefined);
      return { ok: response.ok && body?.ok === true, body };
    } catch (error) {
      return { ok: false, body: String(error) };
    }
  }

  async restartRoom(room: number): Promise<void> {
    const pr = this.prs[room % this.prs.length]!;
    const answer = await this.postFault(`/__faults/rooms/${pr}/restart`);
    this.note(`room-restart r${room % this.prs.length} (${pr}): ${answer.ok ? "done" : `not done: ${JSON.stringify(answer.body)}`}`);
    if (answer.ok) this.count("room-restart");
  }

  async restartServer(downMs: number): Promise<void> {
    this.note("server-restart: stopping wrangler");
    await this.server.stop();
    this.count("server-restart");
    await sleep(downMs);
    await this.server.start();
    this.note(`server-restart: wrangler serving again (down ${downMs} ms + its start)`);
  }

  // ---- reporting ---------------------------------------------------------------------

  /** The failure, readable: violations, then the timeline and each implicated client's trace. */
  report(): string {
    const lines: string[] = [];
    lines.push(`schedule ${this.tag}: ${this.violations.length} violation(s)`);
    for (const v of this.violations.slice(0, 40)) lines.push(`  - [${v.kind}]${v.pr === undefined ? "" : ` room ${v.pr} (r${this.prs.indexOf(v.pr)})`}${v.client ? ` ${v.client}` : ""}: ${v.text}`);
    if (this.violations.length > 40) lines.push(`  … and ${this.violations.length - 40} more`);
    lines.push("", "timeline:");
    lines.push(...this.timeline.slice(-150).map((line) => `  ${line}`));
    const implicated = new Set(this.violations.map((v) => v.client).filter(Boolean));
    // A violation about a room (acks, double broadcasts) implicates every member of it.
    for (const v of this.violations) {
      if (v.pr !== undefined && (v.client === undefined || ["double-broadcast", "acked-gap", "idempotency", "mismatch"].includes(v.kind))) {
        for (const c of this.clients) if (c.prs.includes(v.pr)) implicated.add(c.name);
      }
    }
    for (const client of this.clients) {
      if (implicated.size > 0 && !implicated.has(client.name)) continue;
      lines.push("", `${client.name} (${client.describe()}) trace:`);
      lines.push(...client.trace.slice(-120).map((line) => `  ${line}`));
      const ids = [...client.ids];
      const logged = this.server.logs().split("\n").filter((line) => !line.includes('"evt":"room_stats"') && ids.some((id) => line.includes(`"${id}"`)));
      lines.push(`  what the server logged about its sessions (${logged.length} lines, the last 40):`);
      lines.push(...logged.slice(-40).map((line) => `    ${line}`));
    }
    return lines.join("\n");
  }
}

/** How the client's last established connection ended. */
interface Ended {
  reason: string;
  at: number;
  /** ms between the connection's last join ack and its end. */
  sinceJoin: number;
  /** Its Engine.IO session id. */
  sid?: string;
  /** Its token had expired by then: the server may have ended it on purpose (not recoverable) while the client saw only the transport go. */
  tokenExpired: boolean;
  /** It had joined (or recovered) at least one room: a transport drop must then be recovered. */
  hadRooms: boolean;
  /** A fault the harness caused just before (for the report). */
  cause?: string;
}

export class ChaosClient {
  readonly name: string;
  readonly username: string;
  readonly prs: number[];
  socket!: Socket;
  readonly trace: string[] = [];
  private readonly logs = new Map<number, ClientRoomLog>();
  /** Established connections so far (1 = the first). */
  conn = 0;
  /** A connection was established but not yet accounted for (its recovered flag not yet read). */
  private pendingStart = true;
  private readonly joinedAt = new Map<number, number>();
  private ended: Ended | undefined;
  /** The last socket.disconnect() came right after a transport fault, before the client noticed it. */
  private undeliverableDisconnect = false;
  private hasRooms = false;
  /** socket.disconnect() on purpose; connect() again later. */
  offline = false;
  private token: string | undefined;
  /** When the current token expires (ms since the epoch), and that of the token the last CONNECT carried. */
  private tokenExpiresAt = 0;
  private sentTokenExpiresAt = 0;
  /** The expiry of the token the current connection was opened with (0: identity off). */
  private connTokenExpiresAt = 0;
  private readonly paused = new Set<NetSocket>();
  private slowRunning = false;
  private lastFault: string | undefined;
  private reconnectsByHand = 0;
  /** Not-recovered reconnects to judge at the end (see excusedNotRecovered). */
  private readonly unrecovered: Array<{ conn: number; lastSeen: Map<number, number | undefined>; violation: Violation }> = [];
  /** The current connection's Engine.IO session id. */
  private engineSid: string | undefined;
  get currentSid(): string | undefined {
    return this.engineSid;
  }
  /** Every Socket.IO and Engine.IO id it had: its lines in the server's log. */
  readonly ids = new Set<string>();
  /** When the last join ack arrived (ms since the schedule started). */
  private lastJoinAck = 0;
  /** Server disconnects and `token_expired` refusals seen. */
  private expiriesEnforced = 0;

  constructor(
    private readonly world: World,
    readonly index: number,
    readonly spec: ClientSpec,
  ) {
    this.name = `c${index}`;
    this.username = `user${index}`;
    this.prs = spec.rooms.map((room) => world.prs[room % world.prs.length]!);
  }

  describe(): string {
    return `${this.spec.path}, ${this.spec.polling ? "polling+upgrade" : "websocket"}, rooms ${this.spec.rooms.map((r) => `r${r}`).join("+")}`;
  }

  describeState(): string {
    const missing = this.prs.filter((pr) => this.joinedAt.get(pr) !== this.conn);
    return `${this.name}: connected=${this.socket.connected} conn=#${this.conn} offline=${this.offline} not joined on this connection: ${missing.join(",") || "none"}`;
  }

  private t(line: string): void {
    this.trace.push(`${String(this.world.now()).padStart(6)} ms  ${line}`);
    if (this.world.options.verbose) this.world.options.print(`    ${this.world.tag} ${this.world.now()} ms ${this.name} ${line}`);
  }

  logOf(pr: number): ClientRoomLog {
    let log = this.logs.get(pr);
    if (!log) this.logs.set(pr, (log = { client: this.name, pr, epochs: [] }));
    return log;
  }

  private epoch(pr: number): Epoch | undefined {
    return this.logOf(pr).epochs.at(-1);
  }

  private newEpoch(pr: number, cause: EpochCause): void {
    this.logOf(pr).epochs.push({ cause, conn: this.conn, items: [], startedAt: this.world.now() });
  }

  /** The last seq its current membership of `pr` accounts for (received, or its join's head); undefined if unknown. */
  private lastSeqOf(pr: number): number | undefined {
    const epoch = this.epoch(pr);
    if (!epoch) return undefined;
    for (let i = epoch.items.length - 1; i >= 0; i--) {
      const item = epoch.items[i]!;
      if (item.kind === "msg") return item.m.seq;
    }
    return epoch.base;
  }

  /**
   * Connections that came back not recovered after a transport drop. Excused (README) when a
   * room's log may no longer have reached back far enough: more than RECOVERY_MAX_MESSAGES may
   * have been said in one of its rooms between what it had and its return. The room's head then
   * is bounded by the next join ack the client got (or the last acknowledged seq). (The server's
   * own `not_recovered` line is not required: the direct path does not always log one.) Returns
   * the violations to drop.
   */
  excusedNotRecovered(maxMessages: number): Violation[] {
    const excused: Violation[] = [];
    for (const { conn, lastSeen, violation } of this.unrecovered) {
      const couldHaveMissedTooMany = [...lastSeen].some(([pr, seen]) => {
        const later = this.logOf(pr).epochs.find((e) => e.conn >= conn && e.base !== undefined);
        const head = later?.base ?? this.world.ackedHead(pr);
        return seen === undefined || head - seen > maxMessages;
      });
      if (couldHaveMissedTooMany) excused.push(violation);
    }
    return excused;
  }

  /** Its current membership of `pr` started at a join after `seq` (a fresh connection): it owes nothing up to it. */
  joinedAfter(pr: number, seq: number): boolean {
    const epoch = this.epoch(pr);
    return epoch !== undefined && epoch.base !== undefined && epoch.base >= seq;
  }

  hasSeq(pr: number, seq: number): boolean {
    return this.logOf(pr).epochs.some((e) => e.items.some((item) => item.kind === "msg" && item.m.seq === seq));
  }

  /** Connected, accounted for, and joined to every room on the current connection. */
  ready(): boolean {
    return this.socket.connected && !this.pendingStart && !this.offline && this.prs.every((pr) => this.joinedAt.get(pr) === this.conn);
  }

  get transport(): string {
    return this.socket.io.engine?.transport?.name ?? "none";
  }

  /** The TCP socket under the WebSocket transport (Node's `ws`), when on WebSocket. */
  tcp(): NetSocket | undefined {
    const transport = this.socket.io.engine?.transport as unknown as { name: string; ws?: { _socket?: NetSocket } } | undefined;
    if (transport?.name !== "websocket") return undefined;
    const tcp = transport.ws?._socket;
    return tcp && !tcp.destroyed ? tcp : undefined;
  }

  private setToken(token: string, ttlSeconds: number): void {
    this.token = token;
    this.tokenExpiresAt = (Math.floor(Date.now() / 1000) + ttlSeconds) * 1000;
  }

  /** Identity on: a connection must not outlive its token (README: it ends at `exp`; CLOCK_SKEW_SECONDS is 0 here). */
  private watchExpiry(conn: number): void {
    const expiresAt = this.sentTokenExpiresAt;
    const wait = expiresAt - Date.now();
    if (!this.world.config.auth || expiresAt === 0 || wait > 60_000) return;
    this.t(`connection #${conn}'s token expires in ${wait} ms`);
    this.world.track(
      until(() => this.world.closed || this.conn !== conn || !this.socket.connected || Date.now() > expiresAt + EXPIRY_GRACE_MS, wait + EXPIRY_GRACE_MS + 30_000, "expiry").then(() => {
        if (!this.world.closed && this.conn === conn && this.socket.connected) {
          this.world.violation({ kind: "token-expiry", client: this.name, text: `connection #${conn} (id ${this.socket.id}) was still open ${EXPIRY_GRACE_MS} ms after its token expired` });
        }
      }),
    );
  }

  async open(): Promise<void> {
    if (this.world.config.auth) this.setToken(await this.world.token(this.username, 3600), 3600);
    const query = this.spec.path === "direct" ? { pullRequestId: String(this.prs[0]) } : undefined;
    this.socket = io(this.world.url, {
      forceNew: true,
      transports: this.spec.polling ? ["polling", "websocket"] : ["websocket"],
      ...(query && { query }),
      reconnectionDelay: 100,
      reconnectionDelayMax: 1000,
      timeout: 8000,
      ...(this.world.config.auth && {
        auth: (cb: (data: object) => void) => {
          this.sentTokenExpiresAt = this.tokenExpiresAt;
          cb({ token: this.token });
        },
      }),
    });
    const socket = this.socket;
    socket.on("connect", () => this.onConnect());
    socket.on("disconnect", (reason, description) => this.onDisconnect(reason, description));
    socket.on("connect_error", (error: Error & { data?: { code?: string } }) => this.onConnectError(error));
    socket.on("pr-room-message", (m: any) => this.onMessage(m));
    socket.on("pr-room-error", (e: any) => this.onError(e));
    socket.io.on("reconnect_attempt", (n) => n % 10 === 0 && this.t(`reconnect attempt ${n}`));
    socket.io.on("open", () => socket.io.engine.on("upgrade", () => this.t("upgraded to websocket")));
  }

  /** A connection was established: was it recovered, and what does it owe? Runs once per connection. */
  private startConnection(): void {
    if (!this.pendingStart) return;
    this.pendingStart = false;
    this.conn++;
    const recovered = this.socket.recovered === true;
    const ended = this.ended;
    this.engineSid = this.socket.io.engine?.id;
    this.connTokenExpiresAt = this.world.config.auth ? this.sentTokenExpiresAt : 0;
    if (this.engineSid) this.ids.add(this.engineSid);
    if (this.socket.id) this.ids.add(this.socket.id);
    this.t(`connected #${this.conn} id=${this.socket.id} sid=${this.engineSid} recovered=${recovered} transport=${this.transport}`);
    this.watchExpiry(this.conn);
    if (this.conn === 1) {
      for (const pr of this.prs) this.newEpoch(pr, "first connection");
      return;
    }
    if (recovered) {
      this.world.count("reconnects-recovered");
      this.hasRooms = ended?.hadRooms ?? false;
      const undeliverable = ended?.reason === "io client disconnect" && this.undeliverableDisconnect;
      this.undeliverableDisconnect = false;
      if (undeliverable) this.world.count("recovered-after-undeliverable-disconnect");
      else if (ended && !TRANSPORT_REASONS.has(ended.reason)) {
        this.world.violation({
          kind: ended.reason === "io client disconnect" ? "recovered-after-disconnect" : "recovered-after-server-disconnect",
          sid: ended.sid,
          client: this.name,
          text: `connection #${this.conn} came back recovered (same id ${this.socket.id}) after "${ended.reason}"${ended.cause ? ` (${ended.cause})` : ""}: socket.io does not recover that`,
        });
      }
      return;
    }
    this.world.count("reconnects-not-recovered");
    this.hasRooms = false;
    const lastSeen = new Map(this.prs.map((pr) => [pr, this.lastSeqOf(pr)] as const));
    for (const pr of this.prs) this.newEpoch(pr, "not recovered");
    if (this.world.options.expectRecovery && ended && TRANSPORT_REASONS.has(ended.reason) && ended.hadRooms && !ended.tokenExpired) {
      const violation: Violation = {
        kind: "not-recovered",
        sid: ended.sid,
        client: this.name,
        text: `connection #${this.conn} was not recovered after "${ended.reason}"${ended.cause ? ` (${ended.cause})` : ""} ${this.world.now() - ended.at} ms earlier, although the previous connection had joined its rooms (its last join ack came ${ended.sinceJoin} ms before it ended)`,
      };
      this.unrecovered.push({ conn: this.conn, lastSeen, violation });
      this.world.violation(violation);
    }
  }

  private onConnect(): void {
    this.startConnection();
    const conn = this.conn;
    for (const pr of this.prs) this.join(pr, conn, 0);
  }

  private join(pr: number, conn: number, attempt: number): void {
    this.socket
      .timeout(ACK_TIMEOUT_MS)
      .emitWithAck("join-pr-room", { pullRequestId: pr, username: this.username })
      .then(
        (ack: any) => {
          if (this.conn !== conn || this.world.closed) return;
          if (ack?.ok) {
            this.joinedAt.set(pr, conn);
            this.lastJoinAck = this.world.now();
            this.hasRooms = true;
            const epoch = this.epoch(pr);
            if (epoch && epoch.base === undefined && epoch.items.length === 0) epoch.base = ack.seq;
            this.t(`joined ${pr} on #${conn}: seq ${ack.seq}`);
            return;
          }
          this.t(`join ${pr} refused: ${JSON.stringify(ack?.error)}`);
          this.retryJoin(pr, conn, attempt, ack?.error?.code);
        },
        (error: Error) => {
          if (this.conn !== conn || this.world.closed) return;
          this.t(`join ${pr} on #${conn} failed: ${error.message}`);
          this.retryJoin(pr, conn, attempt, "timeout");
        },
      );
  }

  private retryJoin(pr: number, conn: number, attempt: number, code: string): void {
    if (attempt >= JOIN_RETRY_LIMIT) {
      this.world.violation({ kind: "liveness", client: this.name, pr, text: `join refused ${attempt + 1} times on connection #${conn}, last: ${code}` });
      return;
    }
    this.world.later(200, () => {
      if (this.conn === conn && this.socket.connected) this.join(pr, conn, attempt + 1);
    });
  }

  private onDisconnect(reason: string, description: unknown): void {
    const detail = description instanceof Error ? `: ${description.message}` : (description as { description?: unknown })?.description ? `: ${String((description as any).description)}` : "";
    this.t(`disconnected (${reason}${detail}) on #${this.conn}, transport was ${this.transport}`);
    this.world.observed[`disconnect:${reason}`] = (this.world.observed[`disconnect:${reason}`] ?? 0) + 1;
    if (!this.pendingStart) {
      const tokenExpired = this.connTokenExpiresAt > 0 && Date.now() >= this.connTokenExpiresAt;
      this.ended = { reason, at: this.world.now(), sinceJoin: this.world.now() - this.lastJoinAck, hadRooms: this.hasRooms, cause: this.lastFault, sid: this.engineSid, tokenExpired };
    }
    this.lastFault = undefined;
    this.pendingStart = true;
    if (reason === "io server disconnect") {
      this.expiriesEnforced++;
      this.world.count("server-disconnects");
      // Not retried by socket.io-client: a client does it by hand, with a fresh token when identity is on.
      void this.reconnectByHand("the server disconnected it");
    }
  }

  private async reconnectByHand(why: string): Promise<void> {
    if (this.world.closed || this.offline) return;
    if (++this.reconnectsByHand > 50) {
      this.world.violation({ kind: "liveness", client: this.name, text: `reconnected by hand 50 times (${why})` });
      return;
    }
    if (this.world.config.auth) this.setToken(await this.world.token(this.username, 3600), 3600);
    this.world.later(100, () => {
      if (!this.offline && !this.socket.connected) {
        this.t(`connect() by hand (${why})`);
        this.socket.connect();
      }
    });
  }

  private onConnectError(error: Error & { data?: { code?: string } }): void {
    const code = error.data?.code;
    this.t(`connect_error: ${error.message}${code ? ` (${code})` : ""}`);
    if (code === "token_expired") this.expiriesEnforced++;
    // A CONNECT refused by the server (not a transport failure): socket.io-client does not retry it.
    if (code !== undefined || !this.socket.active) void this.reconnectByHand(`connect_error ${code ?? error.message}`);
  }

  private onMessage(m: any): void {
    if (this.world.closed) return;
    // Messages a recovery replays are emitted before the `connect` event: account for the connection first.
    if (this.pendingStart && this.socket.connected) this.startConnection();
    const pr = Number(m?.pullRequestId);
    if (!this.prs.includes(pr)) {
      this.world.violation({ kind: "foreign-room", client: this.name, text: `got a message of room ${m?.pullRequestId} it never joined: ${JSON.stringify(m).slice(0, 200)}` });
      return;
    }
    this.world.count("messages");
    const epoch = this.epoch(pr);
    const receipt = { seq: m.seq, id: m.id, text: m.message, user: m.username, at: this.world.now() };
    if (this.world.options.verbose) this.t(`msg ${pr} seq ${m.seq}`);
    epoch!.items.push({ kind: "msg", m: receipt });
  }

  private onError(e: any): void {
    if (this.world.closed) return;
    if (this.pendingStart && this.socket.connected) this.startConnection();
    const pr = Number(e?.pullRequestId);
    this.t(`pr-room-error ${JSON.stringify(e)}`);
    if (e?.code === "messages_lost" && this.prs.includes(pr)) {
      this.world.count("messages_lost-notices");
      this.epoch(pr)!.items.push({ kind: "lost", n: e.lost, at: this.world.now() });
      return;
    }
    if (e?.code === "room_unavailable" && e?.event === "join-pr-room" && this.prs.includes(pr)) {
      // The server gave the room up for this connection (README: "join it again"). Messages said
      // meanwhile are gone without a count: that breaks continuous membership.
      this.world.count("link-lost");
      this.world.violation({ kind: "room-lost", client: this.name, pr, text: `connection #${this.conn} was dropped from the room while connected: ${e.message}` });
      this.newEpoch(pr, "re-joined after losing the room");
      this.joinedAt.delete(pr);
      this.join(pr, this.conn, 0);
      return;
    }
    this.world.violation({ kind: "unexpected-error", client: this.name, text: `pr-room-error ${JSON.stringify(e)}` });
  }

  // ---- what the schedule makes a client do --------------------------------------------

  /** Sends one message and retries with the same clientMessageId until it is acknowledged. Resolves with its seq. */
  async sendOnce(pr: number, pad: number, label = "send"): Promise<number | undefined> {
    const { text, clientMessageId } = this.world.nextText(this, pad);
    for (let attempt = 1; ; attempt++) {
      if (this.world.closed) return undefined;
      if (Date.now() > this.world.deadline) {
        this.world.violation({ kind: "liveness", client: this.name, pr, text: `${label} ${clientMessageId} never acknowledged (${attempt - 1} attempts)` });
        return undefined;
      }
      if (attempt > 1) this.world.count("resends");
      let ack: any;
      try {
        ack = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: this.username, message: text, clientMessageId });
      } catch (error) {
        this.t(`${label} ${clientMessageId} attempt ${attempt}: ${(error as Error).message}`);
        await sleep(100);
        continue;
      }
      if (ack?.ok) {
        this.world.acked(pr, { seq: ack.seq, id: ack.id, text, user: this.username, clientMessageId, sender: this.name, at: this.world.now() });
        if (attempt > 1 || label !== "send") this.t(`${label} ${clientMessageId} to ${pr}: seq ${ack.seq} (attempt ${attempt})`);
        return ack.seq;
      }
      const code = ack?.error?.code;
      this.t(`${label} ${clientMessageId} attempt ${attempt}: refused ${code} (${ack?.error?.message})`);
      if (code === "room_unavailable" || code === "not_joined" || code === "rate_limited") {
        await sleep(150);
        continue;
      }
      this.world.violation({ kind: "send-refused", client: this.name, pr, text: `${label} ${clientMessageId} refused: ${JSON.stringify(ack)}` });
      return undefined;
    }
  }

  send(room: number, count: number, pad: number): void {
    const pr = this.prs[room % this.prs.length]!;
    for (let i = 0; i < count; i++) this.world.track(this.sendOnce(pr, pad));
  }

  drop(kind: "close" | "reset"): boolean {
    if (!this.socket.connected) return false;
    if (kind === "reset") {
      const tcp = this.tcp();
      if (!tcp) return false;
      this.lastFault = "TCP reset";
      this.t("fault: TCP reset");
      tcp.resetAndDestroy();
      return true;
    }
    this.lastFault = "transport closed by the client";
    this.t(`fault: engine.close() on ${this.transport}`);
    this.socket.io.engine.close();
    return true;
  }

  async replaceLinks(): Promise<boolean> {
    if (!this.socket.connected || this.spec.path !== "gateway") return false;
    const id = this.socket.id!;
    const answer = await this.world.postFault(`/__faults/connections/${encodeURIComponent(id)}/replace-links`);
    this.t(`fault: replace-links ${id}: ${JSON.stringify(answer.body)}`);
    if (!answer.ok) return false;
    if (answer.body?.pending === true) {
      // Replaced at the connection's next event (src/gateway/faults.ts): the client asks who is in a room.
      this.socket.emit("get-pr-room-users", { pullRequestId: this.prs[0] }, () => undefined);
      return true;
    }
    return answer.body?.replaced > 0;
  }

  /** Stops reading for `ms` (a paused reader); false when not on WebSocket. */
  pause(ms: number): boolean {
    const tcp = this.tcp();
    if (!tcp) return false;
    this.t(`fault: pause reading for ${ms} ms`);
    this.lastFault = `paused reader (${ms} ms)`;
    tcp.pause();
    this.paused.add(tcp);
    this.world.later(ms, () => {
      tcp.resume();
      this.paused.delete(tcp);
    });
    return true;
  }

  /** A slow reader: paused for `ms`, reading for a moment, `times` over. */
  slow(times: number, ms: number): boolean {
    if (!this.tcp() || this.slowRunning) return false;
    this.slowRunning = true;
    this.t(`fault: slow reader, ${times} × ${ms} ms paused`);
    this.world.track(
      (async () => {
        try {
          for (let i = 0; i < times && !this.world.closed && Date.now() < this.world.deadline; i++) {
            const tcp = this.tcp();
            if (tcp) {
              this.lastFault = "slow reader";
              tcp.pause();
              this.paused.add(tcp);
            }
            await sleep(ms);
            if (tcp) {
              tcp.resume();
              this.paused.delete(tcp);
            }
            await sleep(30);
          }
        } finally {
          this.slowRunning = false;
        }
      })(),
    );
    return true;
  }

  disconnect(): void {
    this.offline = true;
    // Right after a transport fault the client has not noticed yet (a TCP reset), its DISCONNECT
    // packet goes into a dead socket: the server sees only the transport end, and socket.io too
    // would recover that. Judged by the transport itself, not by which fault came before: a paused
    // or slow reader still writes, so its DISCONNECT does arrive.
    this.undeliverableDisconnect = this.socket.connected && !this.transportWritable();
    if (this.undeliverableDisconnect) this.t(`socket.disconnect() on a dead transport (after "${this.lastFault}"): its DISCONNECT cannot reach the server`);
    this.lastFault = "socket.disconnect()";
    this.t("socket.disconnect()");
    this.socket.disconnect();
  }

  /** Whether what the client sends now can reach the server (an open engine over a WebSocket whose TCP socket is open, or polling). */
  private transportWritable(): boolean {
    if (!this.world.server.running) return false;
    // An engine closing (engine.close() waits for its write buffer to drain) drops what is sent meanwhile.
    if ((this.socket.io.engine as unknown as { readyState?: string } | undefined)?.readyState !== "open") return false;
    const transport = this.socket.io.engine?.transport as unknown as { name: string; ws?: { readyState: number; _socket?: NetSocket } } | undefined;
    if (transport?.name !== "websocket") return true;
    return transport.ws?.readyState === 1 && transport.ws._socket !== undefined && !transport.ws._socket.destroyed;
  }

  reconnect(): void {
    if (!this.offline) return;
    this.offline = false;
    this.t("socket.connect()");
    this.socket.connect();
  }

  /** Identity on: the next connection's token expires in a few seconds, and the connection is made again with it. */
  async expireToken(): Promise<boolean> {
    if (!this.world.config.auth || !this.socket.connected) return false;
    this.setToken(await this.world.token(this.username, 3), 3);
    this.lastFault = "reconnecting with a token about to expire";
    this.t("fault: token expiring in ~3 s; reconnecting with it");
    const before = this.expiriesEnforced;
    this.socket.io.engine.close();
    // The schedule is not over until the server has ended the connection (or refused the expired
    // token). Whether a connection outlived its token is checked per connection (startConnection).
    this.world.track(
      until(() => this.expiriesEnforced > before || this.world.closed, 30_000, "expiry").catch(() =>
        this.t("the short token was neither used past its expiry nor refused within 30 s"),
      ),
    );
    return true;
  }

  /** Before settling: reading again, back online. */
  release(): void {
    for (const tcp of this.paused) tcp.resume();
    this.paused.clear();
    if (this.offline) this.reconnect();
    else if (!this.socket.connected && !this.socket.active) void this.reconnectByHand("settling");
  }

  close(): void {
    this.socket.removeAllListeners();
    this.socket.io.removeAllListeners();
    this.socket.close();
  }
}
