/** The discussion's pure rules inside workerd: mentions in a message, what a reaction may be, and offsets on room events. */
import { describe, expect, it } from "vitest";
import { isEmoji, MAX_EMOJI_BYTES } from "../../src/chat/emoji.js";
import { eventFrame, roomEventFrame } from "../../src/chat/frames.js";
import { mentionsOf } from "../../src/chat/mentions.js";
import { offsetOf, replaceOffset } from "../../src/chat/offset.js";

describe("mentionsOf", () => {
  it.each([
    ["@johndoe approved", ["johndoe"]],
    ["ping @ann and @bob, then @ann again", ["ann", "bob"]],
    ["thanks @john.doe.", ["john.doe"]],
    ["@a-b_c.d-e: look", ["a-b_c.d-e"]],
    ["mail ann@example.com please", []],
    ["x@y and 1@z are not mentions", []],
    ["(@ann) [@bob] \"@cyd\" @@dee", ["ann", "bob", "cyd", "dee"]],
    ["@ alone, @. and @... are nothing", []],
    ["héllo @José and @日本", ["José", "日本"]],
    ["", []],
  ])("%j mentions %j", (message, names) => {
    expect(mentionsOf(message)).toEqual(names);
  });
});

describe("isEmoji", () => {
  it.each(["👍", "👍🏽", "1️⃣", "🇫🇷", "👨‍👩‍👧", "❤️", "❤", "☺"])("takes %s", (emoji) => {
    expect(isEmoji(emoji)).toBe(true);
  });

  it.each(["", "a", ":+1:", "👍👍", "👍 ", " 👍", "1", "#"])("refuses %j", (text) => {
    expect(isEmoji(text)).toBe(false);
  });

  it(`refuses one grapheme over ${MAX_EMOJI_BYTES} bytes`, () => {
    const long = "👨" + "\u200d👨".repeat(7); // one ZWJ sequence, 8 people: 46 bytes
    expect(new TextEncoder().encode(long).length).toBeGreaterThan(MAX_EMOJI_BYTES);
    expect(isEmoji(long)).toBe(false);
  });
});

describe("offsets on every room event", () => {
  it.each(["pr-room-message", "pr-room-message-edited", "pr-room-message-deleted", "pr-room-message-reactions"] as const)(
    "the gateway reads and rewrites the offset of %s",
    (event) => {
      const frame = roomEventFrame("12", event, { id: "m1", seq: 7 }, 7, true);
      expect(offsetOf(frame)).toBe("12:7");
      expect(offsetOf(replaceOffset(frame, "12:7,13:2"))).toBe("12:7,13:2");
    },
  );

  it("leaves other frames alone", () => {
    for (const frame of [eventFrame("typing", { username: "ann" }), eventFrame("pr-room-user-joined", { username: "ann" }), roomEventFrame("12", "pr-room-message", { seq: 1 }, 1, false)]) {
      expect(offsetOf(frame)).toBeUndefined();
      expect(replaceOffset(frame, "1:1")).toBe(frame);
    }
  });
});
