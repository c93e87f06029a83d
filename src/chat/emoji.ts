/**
 * What a reaction may be: one emoji grapheme (a flag, a keycap, a family and a skin tone are
 * each one) of at most MAX_EMOJI_BYTES in UTF-8. RGI emoji, plus a single pictographic
 * character written without its emoji variation selector (`❤`, `☺`), as keyboards often send.
 */
export const MAX_EMOJI_BYTES = 32;

const RGI = /^\p{RGI_Emoji}$/v;
const PICTOGRAPH = /^\p{Extended_Pictographic}\uFE0F?$/u;
const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

export function isEmoji(text: string): boolean {
  if (text.length === 0 || new TextEncoder().encode(text).length > MAX_EMOJI_BYTES) return false;
  const segments = graphemes.segment(text)[Symbol.iterator]();
  const first = segments.next();
  if (first.done || !segments.next().done) return false;
  return RGI.test(text) || PICTOGRAPH.test(text);
}
