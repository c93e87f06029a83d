/** The discussion's pure rules inside workerd: mentions in a message, and what a reaction may be. */
import { describe, expect, it } from "vitest";
import { isEmoji, MAX_EMOJI_BYTES } from "../../src/chat/emoji.js";
import { mentionsOf } from "../../src/chat/mentions.js";

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
