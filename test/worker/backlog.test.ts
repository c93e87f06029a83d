/**
 * The slow-reader cap and the heartbeat as pure code, frame by frame: an EngineSession with
 * a fake transport, a simulated client that reads the frames in order at a given rate and
 * answers each ping when it reaches it, and fake time. What the rules promise:
 * - a client that keeps reading is never cut, however large the burst or the replay;
 * - one over MAX_BACKLOG_BYTES that makes no progress for SLOW_READER_TIMEOUT_MS is cut then,
 *   even when nothing more is sent to it;
 * - past the hard ceiling even a reader is cut;
 * - a pong answers the oldest ping: a probe's pong does not answer the heartbeat's ping;
 * - a client that answers pings it never read cannot keep pace with them;
 * - a look that runs late (the runtime was busy) does not cut before the pongs held back
 *   with it are handled.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { EngineSession, LOOK_AGAIN_MS, TimerHeartbeat, type EngineTransport } from "../../src/session/engine.js";
import type { EngineOptions, Frame } from "../../src/session/types.js";

const LIMIT = 256 * 1024;
const TIMEOUT = 10_000;
/** The documented hard ceiling (src/session/backlog.ts): max(16 × MAX_BACKLOG_BYTES, 16 MiB). */
const CEILING = Math.max(16 * LIMIT, 16 * 1024 * 1024);
const FRAME = `42["pr-room-message",{"message":"${"x".repeat(3_850)}"}]`; // ~3.9 kB, as in the e2e burst

const OPTIONS: EngineOptions = {
  pingInterval: 25_000,
  pingTimeout: 20_000,
  maxPayload: 65_536,
  connectTimeout: 45_000,
  maxBacklog: LIMIT,
  slowReaderTimeout: TIMEOUT,
};

/** A client at the other end: frames wait until it reads them, in order; it answers each ping it reads. */
class Reader {
  readonly unread: Frame[] = [];
  /** Bytes read so far. */
  read = 0;
  closed: { code: number; reason: string } | undefined;
  session!: EngineSession;
  readonly transport: EngineTransport = {
    send: (frame) => void this.unread.push(frame),
    close: (code, reason) => void (this.closed ??= { code, reason }),
  };

  /** What it may still read of what it was given time for (a frame is read whole, once paid for). */
  private budget = 0;

  /** Reads `bytes` more bytes' worth of what waits, in order, answering pings as it goes. */
  take(bytes: number): void {
    this.budget += bytes;
    while (this.unread.length > 0 && !this.closed) {
      const frame = this.unread[0]!;
      const size = typeof frame === "string" ? frame.length : frame.byteLength;
      if (size > this.budget) return;
      this.unread.shift();
      this.budget -= size;
      this.read += size;
      if (frame === "2") this.session.receive("3");
    }
    this.budget = 0; // idle: time with nothing to read is not saved up
  }

  /** Bytes sent to it that it has not read (what the server owes is at least this). */
  get unreadBytes(): number {
    return this.unread.reduce((sum, frame) => sum + (typeof frame === "string" ? frame.length : frame.byteLength), 0);
  }

  /** Reads up to and including the next ping, and answers it. */
  takeThroughPing(): void {
    const at = this.unread.indexOf("2");
    const upTo = this.unread.slice(0, at + 1);
    this.take(upTo.reduce((sum, frame) => sum + (typeof frame === "string" ? frame.length : frame.byteLength), 0));
  }
}

function open(options: Partial<EngineOptions> = {}, now = Date.now()): { reader: Reader; session: EngineSession } {
  const reader = new Reader();
  const session = new EngineSession({ sid: "s", openedAt: now }, reader.transport, { ...OPTIONS, ...options }, new TimerHeartbeat());
  reader.session = session;
  session.open();
  reader.take(Infinity); // the open packet
  return { reader, session };
}

/** Advances fake time by `ms`, one millisecond at a time, running `each` before every step. */
function run(ms: number, each: (t: number) => void): void {
  for (let t = 0; t < ms; t++) {
    each(t);
    vi.advanceTimersByTime(1);
  }
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(1_700_000_000_000);
});
afterEach(() => {
  vi.useRealTimers();
});

describe("a client that keeps reading", () => {
  it("is never cut, however large the burst: 1,500 frames of 3.9 kB sent at once, read over 30 s", () => {
    const { reader, session } = open();
    for (let i = 0; i < 1_500; i++) session.send(FRAME);
    expect(reader.closed).toBeUndefined(); // not for the size of the burst:
    expect(reader.unreadBytes).toBeGreaterThan(20 * LIMIT); // 5.9 MB owed at once...
    // ...read at 200 kB/s: three times the slow-reader timeout, with progress all along.
    run(31_000, () => reader.take(200));
    expect(reader.closed).toBeUndefined();
    expect(reader.unread).toEqual([]);
  });

  it("is never cut while a room keeps writing as fast as it reads, for longer than the timeout", () => {
    const { reader, session } = open();
    let sent = 0;
    run(25_000, (t) => {
      if (t % 4 === 0) {
        session.send(FRAME); // ~1 MB/s
        sent++;
      }
      reader.take(1_000);
    });
    expect(sent).toBe(6_250);
    expect(reader.closed).toBeUndefined();
  });

  it("recovering, is not cut while it reads its replay, counted frame by frame (4 MiB, read over 12 s)", () => {
    const { reader, session } = open();
    // Long idle first: the heartbeat pings and it answers.
    run(60_000, () => reader.take(Infinity));
    const replay = Math.ceil((4 * 1024 * 1024) / FRAME.length);
    for (let i = 0; i < replay; i++) session.send(FRAME, FRAME.length);
    run(13_000, () => reader.take(350));
    expect(reader.closed).toBeUndefined();
    expect(reader.unread).toEqual([]);
  });

  it("is cut past the hard ceiling, progress or not, when it reads more slowly than the room writes", () => {
    const { reader, session } = open();
    let maxUnreadOpen = 0;
    run(60_000, (t) => {
      if (reader.closed) return;
      if (t % 4 === 0) session.send(FRAME); // ~1 MB/s
      reader.take(500); // 500 kB/s: it reads, but falls behind by 500 kB every second
      if (!reader.closed) maxUnreadOpen = Math.max(maxUnreadOpen, reader.unreadBytes);
    });
    expect(reader.closed).toEqual({ code: 1013, reason: "slow reader: reconnect" });
    // Open until it was close to the ceiling (what it owes runs ahead of what it has not read by a probe or so).
    expect(maxUnreadOpen).toBeLessThanOrEqual(CEILING);
    expect(maxUnreadOpen).toBeGreaterThan(CEILING - LIMIT / 2);
  });
});

describe("a client that stops reading", () => {
  it("is cut SLOW_READER_TIMEOUT_MS after it went over the cap, with nothing more sent to it", () => {
    const { reader, session } = open();
    for (let i = 0; i < 100; i++) session.send(FRAME); // 390 kB: over the 256 KiB cap
    expect(reader.unreadBytes).toBeGreaterThan(LIMIT);
    vi.advanceTimersByTime(TIMEOUT - 1);
    expect(reader.closed).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(reader.closed).toEqual({ code: 1013, reason: "slow reader: reconnect" });
  });

  it("is cut SLOW_READER_TIMEOUT_MS after its last progress", () => {
    const { reader, session } = open();
    for (let i = 0; i < 200; i++) session.send(FRAME); // 780 kB
    vi.advanceTimersByTime(6_000);
    reader.take(200_000); // some progress: the probes it reached are answered
    expect(reader.unreadBytes).toBeGreaterThan(LIMIT + 100_000);
    vi.advanceTimersByTime(TIMEOUT - 1);
    expect(reader.closed).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(reader.closed?.code).toBe(1013);
  });

  it("is not judged while it owes no more than the cap", () => {
    const { reader, session } = open({ pingInterval: 1_000_000, pingTimeout: 1_000_000 });
    for (let i = 0; i < 60; i++) session.send(FRAME); // 234 kB
    vi.advanceTimersByTime(10 * TIMEOUT);
    expect(reader.closed).toBeUndefined();
  });
});

describe("the heartbeat matches pongs to pings", () => {
  it("a probe's pong does not answer the heartbeat ping sent after it: the session times out", () => {
    const { reader, session } = open({ pingInterval: 1_000, pingTimeout: 500 });
    while (!reader.unread.includes("2")) session.send(FRAME); // until a probe goes out
    expect(reader.unreadBytes).toBeLessThan(LIMIT / 2);
    vi.advanceTimersByTime(1_000); // the heartbeat ping goes out behind it
    expect(reader.unread.filter((frame) => frame === "2")).toHaveLength(2);
    // The client reads up to the probe only, and answers it: the older ping.
    reader.takeThroughPing();
    expect(reader.unread.filter((frame) => frame === "2")).toHaveLength(1);
    vi.advanceTimersByTime(499);
    expect(reader.closed).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(reader.closed).toEqual({ code: 1000, reason: "ping timeout" });
  });

  it("the heartbeat ping's own pong keeps the session open", () => {
    const { reader, session } = open({ pingInterval: 1_000, pingTimeout: 500 });
    while (!reader.unread.includes("2")) session.send(FRAME);
    vi.advanceTimersByTime(1_000);
    run(5_000, () => reader.take(Infinity));
    expect(reader.closed).toBeUndefined();
  });
});

describe("a client that answers pings it never read", () => {
  it("cannot keep pace with the probes: a pong every 100 ms while the room writes ~1 MB/s is found out", () => {
    const { reader, session } = open();
    run(120_000, (t) => {
      if (reader.closed) return;
      if (t % 4 === 0) session.send(FRAME); // 250 frames/s, ~1 MB/s
      if (t % 100 === 0) session.receive("3"); // never reads
    });
    expect([1002, 1013]).toContain(reader.closed?.code);
  });

  it("an honest reader under the same load is not", () => {
    const { reader, session } = open();
    run(60_000, (t) => {
      if (t % 4 === 0) session.send(FRAME);
      reader.take(Infinity);
    });
    expect(reader.closed).toBeUndefined();
  });

  it("pongs faster than pings are pongs nobody asked for: closed as a protocol error", () => {
    const { reader, session } = open();
    run(5_000, (t) => {
      if (reader.closed) return;
      if (t % 50 === 0) session.send(FRAME); // 78 kB/s
      if (t % 100 === 0) session.receive("3");
    });
    expect(reader.closed).toEqual({ code: 1002, reason: "protocol error" });
  });
});

describe("a look that runs late, the runtime being busy", () => {
  /** Timers that fire when told, and a clock that may run ahead of them (the runtime held them back). */
  let clock = 0;
  const busyFor = (ms: number) => void (clock += ms);
  const tick = (ms: number) => {
    clock += ms;
    vi.advanceTimersByTime(ms);
  };
  beforeEach(() => {
    vi.useRealTimers();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    clock = 1_700_000_000_000;
    vi.spyOn(Date, "now").mockImplementation(() => clock);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("does not cut a reader whose pongs the runtime held back with it", () => {
    const { reader, session } = open();
    for (let i = 0; i < 200; i++) session.send(FRAME); // 780 kB: over the cap
    busyFor(TIMEOUT + 5_000); // nothing runs meanwhile: the deadline's look, and the client's pongs, wait
    vi.advanceTimersByTime(TIMEOUT); // the look runs, 5 s late
    expect(reader.closed).toBeUndefined();
    reader.take(Infinity); // then the pongs come in: it had been reading all along
    tick(LOOK_AGAIN_MS + 1);
    expect(reader.closed).toBeUndefined();
  });

  it("cuts one that stopped reading when it looks again, on time", () => {
    const { reader, session } = open();
    for (let i = 0; i < 200; i++) session.send(FRAME);
    busyFor(TIMEOUT + 5_000);
    vi.advanceTimersByTime(TIMEOUT);
    expect(reader.closed).toBeUndefined();
    tick(LOOK_AGAIN_MS + 1);
    expect(reader.closed).toEqual({ code: 1013, reason: "slow reader: reconnect" });
  });
});
