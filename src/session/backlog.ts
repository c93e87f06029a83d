/**
 * How far behind a client is in reading what we sent. Workers WebSockets expose no
 * `bufferedAmount`, so the measure is built from the protocol itself: a client answers
 * each ping with a pong, in order, after reading everything sent before that ping. A pong
 * therefore proves the client has read up to the byte count recorded when its ping went
 * out. Pure: the host sends the pings and closes the connection.
 */

/** Past this share of the limit, a probe ping is sent if none is outstanding. */
const PROBE_SHARE = 4;

/** "ok": not behind; "wait": behind, a probe is out; "probe": ask for proof now; "cut": too far behind. */
export type BacklogVerdict = "ok" | "wait" | "probe" | "cut";

export class Backlog {
  /** Bytes sent so far. */
  private sent = 0;
  /** Bytes the client has proved it read. */
  private read = 0;
  /** The byte count at each ping not yet answered, oldest first. */
  private readonly marks: number[] = [];

  constructor(private readonly limit: number) {}

  /** Counts a frame going out, and says where the client stands. */
  sentBytes(bytes: number): BacklogVerdict {
    this.sent += bytes;
    return this.verdict();
  }

  /** Where the client stands now. */
  verdict(): BacklogVerdict {
    if (this.limit === 0) return "ok";
    const owed = this.sent - this.read;
    if (owed > this.limit) return "cut";
    if (owed <= this.limit / PROBE_SHARE) return "ok";
    return this.marks.length === 0 ? "probe" : "wait";
  }

  /** A ping went out (heartbeat or probe): its pong will prove everything before it was read. */
  pinged(): void {
    this.marks.push(this.sent);
  }

  /** A pong came back: it answers the oldest ping. False when no ping was outstanding. */
  ponged(): boolean {
    const mark = this.marks.shift();
    if (mark === undefined) return false;
    this.read = mark;
    return true;
  }

  get outstandingPings(): number {
    return this.marks.length;
  }

  /** Bytes sent and not yet proved read. */
  get owed(): number {
    return this.sent - this.read;
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
