/**
 * The chaos harness's checker on made-up recordings: it accepts exactly the allowed
 * histories and names every violation (no server involved).
 */
import { describe, expect, it } from "vitest";
import { checkRoom, compress, type Acked, type ClientRoomLog, type Epoch, type Item } from "./invariant.js";

const PR = 7;
const text = (seq: number) => `m${seq}`;
const ack = (seq: number, cmid = `c-${seq}`): Acked => ({ seq, id: `id${seq}`, text: text(seq), user: "u", clientMessageId: cmid, sender: "c0", at: seq });
const msg = (seq: number, over: Partial<{ id: string; text: string }> = {}): Item => ({
  kind: "msg",
  m: { seq, id: over.id ?? `id${seq}`, text: over.text ?? text(seq), user: "u", at: seq },
});
const lost = (n: number | undefined): Item => ({ kind: "lost", n, at: 0 });
const epoch = (cause: Epoch["cause"], base: number | undefined, items: Item[], conn = 1): Epoch => ({ cause, conn, base, items, startedAt: 0 });
const log = (...epochs: Epoch[]): ClientRoomLog => ({ client: "c1", pr: PR, epochs });
const acks = (n: number) => Array.from({ length: n }, (_, i) => ack(i + 1));
const seqs = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => msg(from + i));
const kinds = (acked: Acked[], logs: ClientRoomLog[], marker?: number) =>
  [...new Set(checkRoom({ pr: PR, acks: acked, marker, members: ["c1"] }, logs).map((v) => v.kind))];

describe("the chaos invariant", () => {
  it("accepts a contiguous membership from the join", () => {
    expect(kinds(acks(5), [log(epoch("first connection", 0, seqs(1, 5)))], 5)).toEqual([]);
  });

  it("accepts a fresh (not recovered) connection that owes nothing from before its join", () => {
    const logs = [log(epoch("first connection", 0, seqs(1, 2)), epoch("not recovered", 6, seqs(7, 9), 2))];
    expect(kinds(acks(9), logs, 9)).toEqual([]);
  });

  it("accepts a gap it was told about, with the exact count", () => {
    expect(kinds(acks(9), [log(epoch("first connection", 0, [...seqs(1, 3), lost(4), ...seqs(8, 9)]))], 9)).toEqual([]);
  });

  it("flags a gap nobody announced, and a miscounted one", () => {
    expect(kinds(acks(6), [log(epoch("first connection", 0, [...seqs(1, 2), ...seqs(5, 6)]))], 6)).toEqual(["gap"]);
    expect(kinds(acks(9), [log(epoch("first connection", 0, [...seqs(1, 3), lost(2), ...seqs(8, 9)]))], 9)).toEqual(["gap"]);
    expect(kinds(acks(9), [log(epoch("first connection", 0, [...seqs(1, 3), lost(6), ...seqs(8, 9)]))], 9)).toEqual(["lost-count"]);
    expect(kinds(acks(4), [log(epoch("first connection", 0, [...seqs(1, 2), lost(undefined), ...seqs(4, 4)]))], 4)).toEqual(["lost-count"]);
  });

  it("flags a gap at the start of a membership (after the join ack's seq)", () => {
    expect(kinds(acks(5), [log(epoch("not recovered", 2, seqs(4, 5)))], 5)).toEqual(["gap"]);
  });

  it("flags duplicates, reordering, messages from before the join", () => {
    expect(kinds(acks(3), [log(epoch("first connection", 0, [...seqs(1, 3), msg(2)]))], 3)).toEqual(["duplicate"]);
    expect(kinds(acks(3), [log(epoch("first connection", 0, [msg(1), msg(3), msg(2)]))], 3)).toEqual(["gap", "order"]);
    expect(kinds(acks(5), [log(epoch("not recovered", 3, seqs(2, 5)))], 5)).toEqual(["before-join"]);
  });

  it("flags a duplicate across memberships", () => {
    const logs = [log(epoch("first connection", 0, seqs(1, 3)), epoch("not recovered", 2, seqs(3, 4), 2))];
    expect(kinds(acks(4), logs, 4)).toContain("duplicate");
  });

  it("flags a receipt that is not the acknowledged message, and a message broadcast twice", () => {
    expect(kinds(acks(2), [log(epoch("first connection", 0, [msg(1), msg(2, { id: "other" })]))], 2)).toEqual(["mismatch"]);
    expect(kinds(acks(2), [log(epoch("first connection", 0, [msg(1), msg(2, { text: text(1), id: "id2" })]))], 2)).toContain("double-broadcast");
  });

  it("flags gaps in the acknowledged seqs and a clientMessageId answered twice differently", () => {
    expect(kinds([ack(1), ack(3)], [log(epoch("first connection", 0, [msg(1), msg(3)]))], 3)).toEqual(["acked-gap", "gap"]);
    expect(kinds([ack(1), ack(2, "c-1")], [log(epoch("first connection", 0, seqs(1, 2)))], 2)).toContain("idempotency");
  });

  it("with a short log, excuses a resend broadcast again after the first copy left the log, and only then", () => {
    const logs = (second: number) => [log(epoch("first connection", 0, [...seqs(1, second - 1), msg(second, { text: text(1), id: `id${second}` })]))];
    const acked = (second: number) => [...acks(second).slice(1, second - 1), { ...ack(second), text: text(1), clientMessageId: "c-1" }];
    const check = (second: number, window: number) =>
      [...new Set(checkRoom({ pr: PR, acks: acked(second), marker: second, members: ["c1"] }, logs(second), { dedupeWindow: window }).map((v) => v.kind))];
    expect(check(14, 10)).toEqual([]);
    expect(check(14, 20)).toEqual(["double-broadcast", "acked-gap"]);
  });

  it("flags a member without the final marker", () => {
    expect(kinds(acks(3), [log(epoch("first connection", 0, seqs(1, 2)))], 3)).toEqual(["marker"]);
  });

  it("compresses seq lists", () => {
    expect(compress([1, 2, 3, 7, 9, 10])).toBe("1..3, 7, 9..10");
  });
});
