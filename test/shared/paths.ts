/**
 * The two ways a client reaches a room, for `describe.each`: the gateway path (the Worker
 * holds the socket and links to each joined room) and the direct path (the client names its
 * pull request in the URL and the room holds the socket). Both must behave the same.
 */
export type PathName = "gateway" | "direct";

/**
 * `[name, forRoom]` for each path, gateway first, where `forRoom(pr)` is what a client on
 * that path needs to reach room `pr` (`connect` says how, e.g. a raw query or client options).
 */
export function eachPath<T>(connect: (path: PathName, pr: number | string) => T) {
  return [
    ["gateway", (pr: number | string) => connect("gateway", pr)],
    ["direct", (pr: number | string) => connect("direct", pr)],
  ] as const;
}

/** The Engine.IO query a raw client sends on `path` for room `pr`. */
export function rawQuery(path: PathName, pr: number | string): string {
  return `EIO=4&transport=websocket${path === "direct" ? `&pullRequestId=${pr}` : ""}`;
}
