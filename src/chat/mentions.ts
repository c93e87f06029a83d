/**
 * Mentions: the names a message addresses as `@name`, for the room's `mentions` field and the
 * webhooks a backend notifies from. A name is the longest run of letters, digits, `_`, `-`
 * and `.` after the `@`, without a trailing `.` (the end of a sentence). The `@` must open
 * the message or follow a character that is not a letter or digit, so `ann@example.com`
 * mentions nobody. Each name once, in order of first appearance.
 */
const MENTION = /(?<![\p{L}\p{N}])@([\p{L}\p{N}_.-]+)/gu;

export function mentionsOf(message: string): string[] {
  const names = new Set<string>();
  for (const match of message.matchAll(MENTION)) {
    const name = match[1]!.replace(/\.+$/, "");
    if (name) names.add(name);
  }
  return [...names];
}
