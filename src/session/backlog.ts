/**
 * How far behind a client is in reading what we sent, and whether it is still reading.
 * Workers WebSockets expose no `bufferedAmount`, so the measure is built from the protocol
 * itself: a client answers each ping with a pong, in order, after reading everything sent
 * before that ping. A pong therefore proves the client has read up to the byte count
 * recorded when its ping went out. Pure (time comes in as arguments): the host sends the
 * pings and closes the connection.
 *
 * The rules, with `limit` = MAX_BACKLOG_BYTES:
 * - Once a client owes more than a quarter of the limit, a probe ping goes out every quarter
 *   of the limit or so (jittered, see `nextSpacing`), and over the limit one is always out,
 *   so a client that reads shows it as it goes, however large the burst: a reader is judged
 *   by its progress, not by how much is in flight at once.
 * - Progress is a pong that proves more bytes read than before. A client that owes more
 *   than the limit and makes no progress for `timeout` (SLOW_READER_TIMEOUT_MS) is cut.
 *   The clock runs from when it went over the limit or last made progress, whichever is
 *   later, so it never starts before the session opened: a recovered client reading its
 *   replay is judged from the moment it got it. Only the heartbeat's look judges a stall
 *   (see `verdict`), so it is judged even when nothing more is sent.
 * - Whatever its progress, a client that owes more than `backlogCeiling(limit)` is cut at
 *   once: see BACKLOG_CEILING_FACTOR for why that bounds memory.
 */

/** Past this share of the limit, probes go out. */
const PROBE_SHARE = 4;

/**
 * The hard ceiling: past `max(16 × limit, 16 MiB)` owed, even a client that reads is cut.
 *
 * Why memory stays bounded: a frame handed to `ws.send` stays in the runtime's buffers (no
 * backpressure reaches the Worker) until the client's TCP stack takes it, and the client
 * proves it took it only by answering a later ping. Every byte sent is counted in `owed`
 * until such a pong, and a send that takes `owed` past the ceiling cuts the connection: so
 * the bytes one socket holds in those buffers never exceed the ceiling plus one frame,
 * whether its client reads or not, and a client that sits over the limit without reading
 * holds them for no longer than the timeout. A room or a gateway isolate holds at most
 * that per socket, and in the steady state (everyone reading) about a round trip's worth.
 *
 * It is generous because it must not cut a healthy reader, and what a server sees of its
 * readers lags: a busy runtime hands over their pongs late. Measured under wrangler dev with
 * the e2e burst (1,500 × 3.9 kB, a 256 KiB limit), a reader that kept up the whole time
 * was seen to owe the whole burst, 6.2 MB, before its pongs came through: 16 MiB is 2.6
 * times that. A recovered client also gets its whole replay at once (MAX_REPLAY_BYTES,
 * 4 MiB by default: a quarter of the floor). The ceiling is for the client that does read,
 * but more slowly than the room writes, for longer than the timeout can see.
 */
export const BACKLOG_CEILING_FACTOR = 16;
export const BACKLOG_CEILING_FLOOR = 16 * 1024 * 1024;

/** Bytes owed past which a client is cut whatever its progress (`limit` > 0). */
export function backlogCeiling(limit: number): number {
  return Math.max(BACKLOG_CEILING_FACTOR * limit, BACKLOG_CEILING_FLOOR);
}

/** The default of SLOW_READER_TIMEOUT_MS. */
export const DEFAULT_SLOW_READER_TIMEOUT = 10_000;

/** One ping not yet answered. */
export interface Ping {
  /** Pings are numbered from 1 in the order they went out; pongs answer them in that order. */
  serial: number;
  /** Bytes sent up to and including this ping: its pong proves the client read them. */
  bytes: number;
  /** When it went out (ms since the epoch). */
  at: number;
  /** A heartbeat ping (its pong is due within pingTimeout), or a probe (its pong shows progress). */
  heartbeat: boolean;
}

/** "ok": nothing to do; "probe": send a probe ping now; "cut": close the connection. */
export type BacklogVerdict = "ok" | "probe" | "cut";

/** Why a client was cut. */
export type CutReason = "stalled" | "ceiling";

/** A number in [0, 1) nobody can predict without reading the socket (see `nextSpacing`). */
function unpredictable(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]! / 2 ** 32;
}

export class Backlog {
  /** Bytes sent so far. */
  private sent = 0;
  /** Bytes the client has proved it read. */
  private read = 0;
  /** Pings not yet answered, oldest first. */
  private readonly marks: Ping[] = [];
  private serials = 0;
  /** `sent` when the newest ping went out. */
  private lastMark = 0;
  /** Bytes after the newest ping before the next probe. */
  private spacing: number;
  /**
   * Since when the client has owed more than the limit without progress (ms since the
   * epoch): when it went over, or its last progress since. Undefined while under the limit.
   */
  private stalledSince: number | undefined;
  /** Why the last `cut` verdict was given. */
  cutReason: CutReason | undefined;

  constructor(
    private readonly limit: number,
    /** SLOW_READER_TIMEOUT_MS. */
    private readonly timeout: number = DEFAULT_SLOW_READER_TIMEOUT,
    /** In [0, 1); tests pass a fixed one. */
    private readonly random: () => number = unpredictable,
  ) {
    this.spacing = this.nextSpacing();
  }

  /** Counts a frame going out at `now`, and says what the host must do: probe, or cut past the ceiling. */
  sentBytes(bytes: number, now: number): BacklogVerdict {
    this.sent += bytes;
    if (this.limit === 0) return "ok";
    if (this.owed > backlogCeiling(this.limit)) return this.cut("ceiling");
    this.track(now);
    return this.probeDue() ? "probe" : "ok";
  }

  /**
   * The heartbeat's look, as of `at`, with nothing sent: a client over the limit that made no
   * progress for the timeout is cut; one over it with no probe out gets one. Only this look
   * judges a stall, never a send: a send may run while the client's pongs still wait in the
   * runtime behind the very burst being sent (a busy room or gateway takes seconds to work
   * through one), whereas the host makes this look in an event of its own at the deadline,
   * and makes it again if that event itself ran late (LATE_LOOK_MS in engine.ts).
   */
  verdict(at: number): BacklogVerdict {
    if (this.limit === 0) return "ok";
    this.track(at);
    if (this.stalledSince !== undefined && at - this.stalledSince >= this.timeout) return this.cut("stalled");
    return this.probeDue() ? "probe" : "ok";
  }

  /**
   * Whether a probe should go out now: behind (more than a quarter of the limit owed), one
   * every `spacing` bytes; over the limit, always one out, so that progress shows.
   */
  probeDue(): boolean {
    const owed = this.owed;
    if (this.limit === 0 || owed <= this.limit / PROBE_SHARE) return false;
    if (this.sent - this.lastMark >= this.spacing) return true;
    return owed > this.limit && !this.probing;
  }

  /** The stall clock: runs from when the client went over the limit, as long as it stays over. */
  private track(now: number): void {
    if (this.owed > this.limit) this.stalledSince ??= now;
    else this.stalledSince = undefined;
  }

  /** A ping went out at `now` (1 byte, counted): its pong will prove everything before it was read. */
  pinged(now: number, heartbeat: boolean): Ping {
    this.sent += 1;
    const ping: Ping = { serial: ++this.serials, bytes: this.sent, at: now, heartbeat };
    this.marks.push(ping);
    this.lastMark = this.sent;
    this.spacing = this.nextSpacing();
    return ping;
  }

  /** A pong came back at `now`: it answers the oldest ping, returned. Undefined when no ping was outstanding. */
  ponged(now: number): Ping | undefined {
    const ping = this.marks.shift();
    if (ping === undefined) return undefined;
    if (ping.bytes > this.read) {
      this.read = ping.bytes;
      // Progress: the stall clock starts again, if the client is still over the limit.
      if (this.stalledSince !== undefined) this.stalledSince = this.owed > this.limit ? now : undefined;
    }
    return ping;
  }

  /** When the client will be cut if it makes no progress first (ms since the epoch); undefined while under the limit. */
  get deadline(): number | undefined {
    return this.stalledSince === undefined ? undefined : this.stalledSince + this.timeout;
  }

  /** Unanswered pings, oldest first. */
  get outstanding(): readonly Ping[] {
    return this.marks;
  }

  /** Whether a probe (not a heartbeat ping) is unanswered. */
  get probing(): boolean {
    return this.marks.some((ping) => !ping.heartbeat);
  }

  /** Bytes sent and not yet proved read. */
  get owed(): number {
    return this.sent - this.read;
  }

  private cut(reason: CutReason): BacklogVerdict {
    this.cutReason = reason;
    return "cut";
  }

  /**
   * Bytes between probes: a quarter of the limit on average, drawn from [1/8, 3/8] of it. A
   * client that answers pongs without reading cannot tell when probes go out, so it cannot
   * keep its pongs in step with them: too many and they are pongs nobody asked for (the
   * session closes past a few), too few and what it owes grows to the ceiling.
   */
  private nextSpacing(): number {
    return Math.floor((this.limit / PROBE_SHARE) * (0.5 + this.random()));
  }
}

const NON_ASCII = /[^\x00-\x7f]/;

/**
 * UTF-8 length of a string without encoding it. Most frames are ASCII: a native scan says
 * so and their length is the answer; only others pay for the loop.
 */
export function utf8Length(text: string): number {
  if (!NON_ASCII.test(text)) return text.length;
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      bytes += 2; // a surrogate pair: 4 bytes for its 2 units
      i++;
    } else bytes += 2;
  }
  return bytes;
}

export function frameBytes(frame: string | ArrayBuffer): number {
  return typeof frame === "string" ? utf8Length(frame) : frame.byteLength;
}
