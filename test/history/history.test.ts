/**
 * History inside workerd (this project runs with HISTORY_RETENTION_DAYS=7), on both paths:
 * pages of messages before a seq, each in its current version, deleted ones marked, and a
 * join that still delivers nothing by itself.
 */
import { describe, expect, it } from "vitest";
import { call, member, nextMessage, PATHS } from "../worker/raw-client.js";

let nextPr = 49_000;
const freshPr = () => nextPr++;

describe.each(PATHS)("history on the %s path", (_, queryFor) => {
  it("reads page by page, oldest first, each message as it is now", { timeout: 15_000 }, async () => {
    const pr = freshPr();
    const ann = await member(queryFor, pr, "ann");
    const sent: Array<{ id: string; seq: number }> = [];
    for (let n = 1; n <= 7; n++) sent.push(await call(ann, "send-message-to-pr-room", { pullRequestId: pr, username: "ann", message: `m${n} @bob` }));
    await call(ann, "edit-pr-room-message", { pullRequestId: pr, id: sent[1]!.id, message: "m2, edited" });
    await call(ann, "delete-pr-room-message", { pullRequestId: pr, id: sent[2]!.id });
    await call(ann, "react-to-pr-room-message", { pullRequestId: pr, id: sent[0]!.id, emoji: "👍" });
    const page = (before: number | undefined, limit: number) => call(ann, "get-pr-room-history", { pullRequestId: pr, limit, ...(before === undefined ? {} : { before }) });

    const latest = await page(undefined, 3);
    expect(latest.ok).toBe(true);
    expect(latest.hasMore).toBe(true);
    expect(latest.messages.map((m: any) => m.message)).toEqual(["m5 @bob", "m6 @bob", "m7 @bob"]);
    expect(latest.messages[0]).toEqual({ pullRequestId: pr, username: "ann", message: "m5 @bob", id: sent[4]!.id, seq: sent[4]!.seq, sentAt: expect.any(Number), mentions: ["bob"] });

    const earlier = await page(latest.messages[0].seq, 3);
    expect(earlier.hasMore).toBe(true);
    expect(earlier.messages).toEqual([
      expect.objectContaining({ id: sent[1]!.id, message: "m2, edited", version: 2, editedAt: expect.any(Number), mentions: [] }),
      { id: sent[2]!.id, seq: sent[2]!.seq, deleted: true },
      expect.objectContaining({ id: sent[3]!.id, message: "m4 @bob" }),
    ]);
    const first = await page(earlier.messages[0].seq, 3);
    expect(first).toEqual({ ok: true, hasMore: false, messages: [expect.objectContaining({ id: sent[0]!.id, message: "m1 @bob", reactions: { "👍": ["ann"] } })] });
    // The default page is 50.
    expect((await call(ann, "get-pr-room-history", { pullRequestId: pr })).messages).toHaveLength(7);
    ann.close();
  });

  it("still gives a newcomer nothing by itself on joining", async () => {
    const pr = freshPr();
    const ann = await member(queryFor, pr, "ann");
    await call(ann, "send-message-to-pr-room", { pullRequestId: pr, username: "ann", message: "before bob" });
    const bob = await member(queryFor, pr, "bob");
    await call(ann, "send-message-to-pr-room", { pullRequestId: pr, username: "ann", message: "after bob" });
    // The first message bob gets is the one sent after he joined; he asks for the rest.
    expect((await nextMessage(bob))[0].message).toBe("after bob");
    expect((await call(bob, "get-pr-room-history", { pullRequestId: pr })).messages.map((m: any) => m.message)).toEqual(["before bob", "after bob"]);
    ann.close();
    bob.close();
  });
});
