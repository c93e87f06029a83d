/**
 * The discussion beside a pull request, frame by frame inside workerd on both paths: edits and
 * deletes of one's own messages, reactions, mentions, and a recovered client that catches up
 * on the changes it missed. History is off here (the default); test/history/ runs with it on.
 */
import { describe, expect, it } from "vitest";
import { call, connectWith, member, nextMessage, openRaw, PATHS, type QueryFor, type RawClient } from "./raw-client.js";

let nextPr = 48_000;
const freshPr = () => nextPr++;

async function say(client: RawClient, pr: number, username: string, message: string) {
  const ack = await call(client, "send-message-to-pr-room", { pullRequestId: pr, username, message });
  expect(ack).toMatchObject({ ok: true });
  return ack as { id: string; seq: number };
}

/** A member that keeps what recovery needs. */
async function recoverableMember(queryFor: QueryFor, pr: number, username: string) {
  const client = await openRaw(queryFor(pr));
  const connect = await connectWith(client, {});
  expect(await call(client, "join-pr-room", { pullRequestId: pr, username })).toMatchObject({ ok: true });
  return { client, sid: connect.sid, pid: connect.pid! };
}

describe("the discussion on the gateway path, in two rooms", () => {
  it("gives every room event, changes too, the offset of both rooms: a recovery resumes each where it was", async () => {
    const [p1, p2] = [freshPr(), freshPr()];
    const gateway = PATHS[0][1];
    const ann = await openRaw(gateway(p1));
    await connectWith(ann, {});
    for (const pr of [p1, p2]) expect(await call(ann, "join-pr-room", { pullRequestId: pr, username: "ann" })).toMatchObject({ ok: true });
    const bob = await member(gateway, p1, "bob");
    const sent = await say(bob, p1, "bob", "in room one");
    await say(ann, p2, "ann", "in room two");
    await call(bob, "edit-pr-room-message", { pullRequestId: p1, id: sent.id, message: "edited in room one" });
    const [, , offset] = (await ann.nextEvent("pr-room-message-edited")) as unknown as [string, any, string];
    expect(new Set(offset.split(","))).toEqual(new Set([`${p1}:${sent.seq + 1}`, `${p2}:1`]));
    ann.close();
    bob.close();
  });
});

describe.each(PATHS)("the discussion on the %s path", (_, queryFor) => {
  // The first test of the file may start the Worker and the room objects cold.
  it("names mentions in every message: @name after a non-alphanumeric, each once, e-mail addresses not", { timeout: 15_000 }, async () => {
    const pr = freshPr();
    const ann = await member(queryFor, pr, "ann");
    await say(ann, pr, "ann", "@bob please look; cc @cyd.doe and @bob, not bob@example.com.");
    const [message] = await nextMessage(ann);
    expect(message.mentions).toEqual(["bob", "cyd.doe"]);
    ann.close();
  });

  it("edits one's own message: everyone sees the new version with its own seq; others may not", async () => {
    const pr = freshPr();
    const ann = await member(queryFor, pr, "ann");
    const bob = await member(queryFor, pr, "bob");
    const sent = await say(ann, pr, "ann", "aproved");
    await nextMessage(bob);
    expect(await call(ann, "edit-pr-room-message", { pullRequestId: pr, id: sent.id, message: "approved @bob" })).toEqual({ ok: true, version: 2 });
    for (const client of [ann, bob]) {
      const [, edited, offset] = (await client.nextEvent("pr-room-message-edited")) as unknown as [string, any, string | undefined];
      expect(edited).toEqual({
        pullRequestId: pr,
        id: sent.id,
        seq: sent.seq + 1,
        username: "ann",
        message: "approved @bob",
        version: 2,
        editedAt: expect.any(Number),
        mentions: ["bob"],
      });
      expect(offset).toBe(`${pr}:${sent.seq + 1}`);
    }
    expect(await call(bob, "edit-pr-room-message", { pullRequestId: pr, id: sent.id, message: "mine now" })).toMatchObject({ ok: false, error: { code: "not_author" } });
    expect(await call(ann, "edit-pr-room-message", { pullRequestId: pr, id: "no-such-id", message: "x" })).toMatchObject({ ok: false, error: { code: "not_found" } });
    // The same rules as a message: not empty, not too long.
    expect(await call(ann, "edit-pr-room-message", { pullRequestId: pr, id: sent.id, message: "  " })).toMatchObject({ ok: false, error: { code: "invalid_payload" } });
    expect(await call(ann, "edit-pr-room-message", { pullRequestId: pr, id: sent.id, message: "x".repeat(4001) })).toMatchObject({
      ok: false,
      error: { code: "message_too_long" },
    });
    expect((await call(ann, "edit-pr-room-message", { pullRequestId: pr, id: sent.id, message: "approved!" })).version).toBe(3);
    ann.close();
    bob.close();
  });

  it("deletes one's own message: everyone hears it, and it can no longer be edited or reacted to", async () => {
    const pr = freshPr();
    const ann = await member(queryFor, pr, "ann");
    const bob = await member(queryFor, pr, "bob");
    const sent = await say(ann, pr, "ann", "my token is hunter2");
    expect(await call(bob, "delete-pr-room-message", { pullRequestId: pr, id: sent.id })).toMatchObject({ ok: false, error: { code: "not_author" } });
    expect(await call(ann, "delete-pr-room-message", { pullRequestId: pr, id: sent.id })).toEqual({ ok: true, id: sent.id, seq: sent.seq + 1 });
    const [, deleted] = await bob.nextEvent("pr-room-message-deleted");
    expect(deleted).toEqual({ pullRequestId: pr, id: sent.id, seq: sent.seq + 1 });
    expect(await call(ann, "edit-pr-room-message", { pullRequestId: pr, id: sent.id, message: "x" })).toMatchObject({ ok: false, error: { code: "not_found" } });
    expect(await call(bob, "react-to-pr-room-message", { pullRequestId: pr, id: sent.id, emoji: "👍" })).toMatchObject({ ok: false, error: { code: "not_found" } });
    expect(await call(ann, "delete-pr-room-message", { pullRequestId: pr, id: sent.id })).toMatchObject({ ok: false, error: { code: "not_found" } });
    ann.close();
    bob.close();
  });

  it("keeps reactions per user: a second tab adds nothing, taking one back removes it, 20 emoji at most", async () => {
    const pr = freshPr();
    const ann = await member(queryFor, pr, "ann");
    const annAgain = await member(queryFor, pr, "ann");
    const bob = await member(queryFor, pr, "bob");
    const sent = await say(ann, pr, "ann", "ship it?");
    const react = (client: RawClient, emoji: string, on?: boolean) => call(client, "react-to-pr-room-message", { pullRequestId: pr, id: sent.id, emoji, ...(on === undefined ? {} : { on }) });
    expect(await react(bob, "👍")).toEqual({ ok: true, reactions: { "👍": ["bob"] } });
    const [, seen] = await ann.nextEvent("pr-room-message-reactions");
    expect(seen).toEqual({ pullRequestId: pr, id: sent.id, seq: sent.seq + 1, reactions: { "👍": ["bob"] } });
    expect(await react(ann, "👍")).toEqual({ ok: true, reactions: { "👍": ["bob", "ann"] } });
    expect(await react(annAgain, "👍")).toEqual({ ok: true, reactions: { "👍": ["bob", "ann"] } });
    expect(await react(bob, "👍", false)).toEqual({ ok: true, reactions: { "👍": ["ann"] } });
    expect(await react(bob, "👍🏽")).toMatchObject({ ok: true });
    for (const text of ["+1", "👍👍", "", ":)"]) expect(await react(bob, text)).toMatchObject({ ok: false, error: { code: "invalid_payload" } });
    // Up to 20 distinct emoji; the 21st is refused, one already there is not.
    const emoji = ["😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆", "😉", "😊", "😋", "😎", "😍", "😘", "🥰", "😗", "😙", "🥲"];
    for (const [index, face] of emoji.entries()) {
      const answer = await react(index % 2 ? ann : bob, face);
      expect(answer).toMatchObject({ ok: true });
    }
    expect(Object.keys((await react(bob, "👍")).reactions)).toHaveLength(20);
    expect(await react(bob, "🎉")).toMatchObject({ ok: false, error: { code: "too_many_reactions" } });
    for (const client of [ann, annAgain, bob]) client.close();
  });

  it("charges reactions to the connection's rate limit, as messages are", async () => {
    const pr = freshPr();
    const ann = await member(queryFor, pr, "ann");
    const sent = await say(ann, pr, "ann", "react to me");
    const faces = ["😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆", "😉", "😊"];
    // 30 at once, over the burst of 20 (RATE_LIMIT_BURST): the rest are refused, and the connection goes on.
    const answers = await Promise.all(Array.from({ length: 30 }, (_, n) => call(ann, "react-to-pr-room-message", { pullRequestId: pr, id: sent.id, emoji: faces[n % 10], on: n < 10 })));
    expect(answers.filter((answer) => answer.error?.code === "rate_limited").length).toBeGreaterThan(0);
    expect(answers.filter((answer) => answer.ok).length).toBeGreaterThan(0);
    ann.close();
  });

  it("refuses history when it is off, and every change before joining", async () => {
    const pr = freshPr();
    const ann = await member(queryFor, pr, "ann");
    expect(await call(ann, "get-pr-room-history", { pullRequestId: pr })).toMatchObject({ ok: false, error: { code: "history_disabled" } });
    expect(await call(ann, "get-pr-room-history", { pullRequestId: pr, limit: 101 })).toMatchObject({ ok: false, error: { code: "invalid_payload" } });
    const stranger = await openRaw(queryFor(pr));
    await stranger.connect();
    for (const [event, payload] of [
      ["get-pr-room-history", {}],
      ["edit-pr-room-message", { id: "x", message: "y" }],
      ["delete-pr-room-message", { id: "x" }],
      ["react-to-pr-room-message", { id: "x", emoji: "👍" }],
    ] as const) {
      expect(await call(stranger, event, { pullRequestId: pr, ...payload })).toMatchObject({ ok: false, error: { code: "not_joined" } });
    }
    ann.close();
    stranger.close();
  });

  it("replays the changes a recovered client missed, in order, and never the text of a deleted message", async () => {
    const pr = freshPr();
    const ann = await recoverableMember(queryFor, pr, "ann");
    const bob = await member(queryFor, pr, "bob");
    const kept = await say(bob, pr, "bob", "kept");
    const [, offset] = await nextMessage(ann.client);
    ann.client.close();
    await ann.client.waitClosed().catch(() => undefined);
    await call(bob, "edit-pr-room-message", { pullRequestId: pr, id: kept.id, message: "kept, edited" });
    await call(bob, "react-to-pr-room-message", { pullRequestId: pr, id: kept.id, emoji: "🎉" });
    const secret = await say(bob, pr, "bob", "password: hunter2");
    await call(bob, "delete-pr-room-message", { pullRequestId: pr, id: secret.id });
    const after = await say(bob, pr, "bob", "after");

    const back = await openRaw(queryFor(pr));
    expect((await connectWith(back, { pid: ann.pid, offset })).sid).toBe(ann.sid);
    const frames: any[] = [];
    while (frames.length < 4) frames.push(await back.nextEvent());
    expect(frames.map(([name, payload]) => [name, payload.seq])).toEqual([
      ["pr-room-message-edited", kept.seq + 1],
      ["pr-room-message-reactions", kept.seq + 2],
      ["pr-room-message-deleted", secret.seq + 1],
      ["pr-room-message", after.seq],
    ]);
    expect(frames[0][1]).toMatchObject({ id: kept.id, message: "kept, edited", version: 2 });
    expect(frames[1][1]).toEqual({ pullRequestId: pr, id: kept.id, seq: kept.seq + 2, reactions: { "🎉": ["bob"] } });
    expect(JSON.stringify(frames)).not.toContain("hunter2");
    back.close();
    bob.close();
  });
});
