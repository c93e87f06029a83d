/**
 * The two ways a client reaches a room, for `describe.each(paths)`: the gateway path (the
 * Worker holds the socket and links to each joined room) and the direct path (the client
 * names its pull request in the URL and the room holds the socket). Both must behave the same.
 */
import type { ManagerOptions, SocketOptions } from "socket.io-client";

export type ClientOptions = Partial<ManagerOptions & SocketOptions>;

export const paths = [
  ["gateway", (_pr: number | string): ClientOptions => ({})],
  ["direct", (pr: number | string): ClientOptions => ({ query: { pullRequestId: String(pr) } })],
] as const;

export type PathName = (typeof paths)[number][0];

/** The Engine.IO query a raw client sends on `path` for room `pr`. */
export function rawQuery(path: PathName, pr: number | string): string {
  return `EIO=4&transport=websocket${path === "direct" ? `&pullRequestId=${pr}` : ""}`;
}
