/**
 * The invariant, over what a schedule recorded (pure: no sockets, no time).
 *
 * A room's truth is what its senders were told (`{ ok: true, id, seq }`) plus what every
 * receiver saw. Per room: the acknowledged seqs are 1..max with no gap, one message per seq,
 * one seq per clientMessageId, and every receipt of a seq carries that message (same id,
 * text, sender). Per client per room: what it received is a list of memberships ("epochs"),
 * each a contiguous run of seqs, every seq at most once, all in order. A membership starts
 * at the client's first connection, at a connection that was NOT recovered
 * (`socket.recovered === false`: it owes nothing from before; its join ack's `seq` is the
 * room's head, so the next message is seq + 1), or where the client re-joined after the
 * server told it it had lost the room. Inside a membership the only gap allowed is one the
 * client was told about (`pr-room-error` `messages_lost` with `lost` = exactly the number
 * skipped). The schedule ends with a marker message per room that every member must get, so
 * a membership cannot quietly end early either.
 */

export interface Receipt {
  seq: number;
  id: string;
  text: string;
  user: string;
  /** ms since the schedule started. */
  at: number;
}

export type Item = { kind: "msg"; m: Receipt } | { kind: "lost"; n: number | undefined; at: number };

export type EpochCause = "first connection" | "not recovered" | "re-joined after losing the room";

export interface Epoch {
  cause: EpochCause;
  /** The client's connection number (1 = its first) that started it. */
  conn: number;
  /** The join ack's `seq` (the room's head at the join), when the join was answered before anything arrived. */
  base?: number;
  items: Item[];
  startedAt: number;
}

export interface ClientRoomLog {
  client: string;
  pr: number;
  epochs: Epoch[];
}

export interface Acked {
  seq: number;
  id: string;
  text: string;
  user: string;
  clientMessageId: string;
  sender: string;
  at: number;
}

export interface RoomRecord {
  pr: number;
  acks: Acked[];
  /** The final marker's seq: every member must have it. */
  marker?: number;
  /** Clients that are members at the end (must have received the marker). */
  members: string[];
}

export type ViolationKind =
  | "gap"
  | "duplicate"
  | "order"
  | "mismatch"
  | "lost-count"
  | "before-join"
  | "marker"
  | "acked-gap"
  | "idempotency"
  | "double-broadcast";

export interface Violation {
  kind: ViolationKind | string;
  pr?: number;
  client?: string;
  text: string;
  /** The Engine.IO session concerned, to find what the server logged about it. */
  sid?: string;
}

const range = (from: number, to: number) => (from === to ? `${from}` : `${from}..${to}`);

export interface CheckOptions {
  /**
   * How many messages back a room remembers a clientMessageId (RECOVERY_MAX_MESSAGES): a resend
   * arriving after the first copy left the log is a new message (README, HTTP API: "while the room
   * still keeps the first message"). Such a double broadcast is counted in `excused`, not flagged.
   */
  dedupeWindow?: number;
  excused?: Record<string, number>;
}

export function checkRoom(room: RoomRecord, logs: ClientRoomLog[], options: CheckOptions = {}): Violation[] {
  const out: Violation[] = [];
  /** Seqs that are the first copy of a message broadcast again after it left the log (excused). */
  const superseded = new Set<number>();
  const v = (kind: ViolationKind, text: string, client?: string) => out.push({ kind, pr: room.pr, client, text });

  // --- the room's truth, from the senders' acks -----------------------------------------
  const bySeq = new Map<number, Acked>();
  const byCmid = new Map<string, Acked>();
  for (const ack of room.acks) {
    const first = byCmid.get(`${ack.user}\u0000${ack.clientMessageId}`);
    if (first && (first.seq !== ack.seq || first.id !== ack.id)) {
      v("idempotency", `clientMessageId ${ack.clientMessageId} from ${ack.user} was answered seq ${first.seq} (id ${first.id}) and then seq ${ack.seq} (id ${ack.id})`);
    }
    if (!first) byCmid.set(`${ack.user}\u0000${ack.clientMessageId}`, ack);
    const other = bySeq.get(ack.seq);
    if (other && other.clientMessageId !== ack.clientMessageId) {
      v("idempotency", `seq ${ack.seq} was acknowledged for two messages: ${JSON.stringify(other.text.slice(0, 40))} and ${JSON.stringify(ack.text.slice(0, 40))}`);
    }
    if (!other) bySeq.set(ack.seq, ack);
  }

  // Every receipt of a seq is the same message; every text is one seq.
  const seen = new Map<number, Receipt & { by: string }>();
  const textSeq = new Map<string, number>();
  for (const log of logs) {
    for (const epoch of log.epochs) {
      for (const item of epoch.items) {
        if (item.kind !== "msg") continue;
        const m = item.m;
        const acked = bySeq.get(m.seq);
        if (acked && (acked.id !== m.id || acked.text !== m.text || acked.user !== m.user)) {
          v("mismatch", `received seq ${m.seq} as ${JSON.stringify({ id: m.id, user: m.user, text: m.text.slice(0, 40) })}, but it was acknowledged as ${JSON.stringify({ id: acked.id, user: acked.user, text: acked.text.slice(0, 40) })}`, log.client);
        }
        const before = seen.get(m.seq);
        if (before && (before.id !== m.id || before.text !== m.text)) {
          v("mismatch", `seq ${m.seq} reached ${before.by} as id ${before.id} and ${log.client} as id ${m.id}`, log.client);
        } else if (!before) seen.set(m.seq, { ...m, by: log.client });
        const otherSeq = textSeq.get(m.text);
        if (otherSeq !== undefined && otherSeq !== m.seq) {
          if (options.dedupeWindow !== undefined && Math.abs(otherSeq - m.seq) > options.dedupeWindow) {
            if (!superseded.has(Math.min(otherSeq, m.seq)) && options.excused) options.excused["resent-after-log"] = (options.excused["resent-after-log"] ?? 0) + 1;
            superseded.add(Math.min(otherSeq, m.seq));
          } else {
            v("double-broadcast", `one message (${JSON.stringify(m.text.slice(0, 40))}) was broadcast twice, as seq ${otherSeq} and seq ${m.seq}`, log.client);
          }
        } else textSeq.set(m.text, m.seq);
      }
    }
  }

  // The acknowledged seqs are 1..max without a gap (each sent message was retried until acknowledged).
  const ackedSeqs = [...bySeq.keys()].sort((a, b) => a - b);
  const maxAcked = ackedSeqs.at(-1) ?? 0;
  const missing: number[] = [];
  for (let seq = 1; seq <= maxAcked; seq++) if (!bySeq.has(seq) && !superseded.has(seq)) missing.push(seq);
  if (missing.length > 0) {
    const receivedAnyway = missing.filter((seq) => seen.has(seq));
    v("acked-gap", `no sender was acknowledged seq ${compress(missing)} (of 1..${maxAcked})${receivedAnyway.length ? `; receivers did get ${compress(receivedAnyway)}` : "; nobody received those either"}`);
  }

  // --- per client: memberships, each contiguous ------------------------------------------
  for (const log of logs) {
    const got = new Set<number>();
    let last = 0;
    let lastAt = 0;
    log.epochs.forEach((epoch, index) => {
      const label = `membership #${index + 1} (${epoch.cause}, connection #${epoch.conn}${epoch.base === undefined ? "" : `, join ack seq ${epoch.base}`})`;
      /** The last seq accounted for (received, or announced lost); undefined until known. */
      let expected: number | undefined = epoch.base;
      let announced = 0;
      for (const item of epoch.items) {
        if (item.kind === "lost") {
          if (item.n === undefined) {
            v("lost-count", `${label}: messages_lost at ${item.at} ms without a count (lost): the skipped number cannot be checked`, log.client);
            expected = undefined; // resynchronise on the next message
          } else {
            announced += item.n;
            if (expected !== undefined) expected += item.n;
          }
          continue;
        }
        const { seq, at } = item.m;
        if (got.has(seq)) {
          v("duplicate", `${label}: seq ${seq} arrived a second time (at ${at} ms)`, log.client);
          continue;
        }
        got.add(seq);
        if (seq < last) v("order", `${label}: seq ${seq} arrived at ${at} ms, after seq ${last} (at ${lastAt} ms)`, log.client);
        else if (expected !== undefined && seq > expected + 1) {
          const told = announced ? ` (it was told of ${announced} lost in this membership, already counted)` : "";
          v("gap", `${label}: expected seq ${expected + 1}, got seq ${seq} at ${at} ms: missed ${range(expected + 1, seq - 1)} without being told${told}${whoAcked(bySeq, expected + 1, seq - 1)}`, log.client);
        } else if (expected !== undefined && seq <= expected) {
          if (epoch.base !== undefined && seq <= epoch.base) {
            v("before-join", `${label}: got seq ${seq} at ${at} ms, from before its join (the join ack said the room was at ${epoch.base})`, log.client);
          } else {
            v("lost-count", `${label}: got seq ${seq} at ${at} ms, which messages_lost (${announced} in all) had said would never arrive`, log.client);
          }
        }
        expected = Math.max(expected ?? 0, seq);
        if (seq > last) {
          last = seq;
          lastAt = at;
        }
      }
    });
    if (room.marker !== undefined && room.members.includes(log.client) && !got.has(room.marker)) {
      v("marker", `never received the final marker (seq ${room.marker}); the last seq it got was ${last || "none"}`, log.client);
    }
  }
  return out;
}

function whoAcked(bySeq: Map<number, Acked>, from: number, to: number): string {
  const senders = new Set<string>();
  for (let seq = from; seq <= to && seq - from < 50; seq++) {
    const ack = bySeq.get(seq);
    if (ack) senders.add(`${ack.sender} at ${ack.at} ms`);
  }
  return senders.size ? `; those were acknowledged to ${[...senders].slice(0, 6).join(", ")}` : "";
}

/** 1,2,3,7,8 → "1..3, 7..8". */
export function compress(seqs: number[]): string {
  const parts: string[] = [];
  let start: number | undefined;
  let prev: number | undefined;
  for (const seq of seqs) {
    if (start === undefined) start = prev = seq;
    else if (seq === prev! + 1) prev = seq;
    else {
      parts.push(range(start, prev!));
      start = prev = seq;
    }
  }
  if (start !== undefined) parts.push(range(start, prev!));
  return parts.join(", ");
}
