/**
 * The direct path's entry: a client that names its pull request in the URL
 * (`io(url, { query: { pullRequestId: 123 } })`) gets its socket handed to that room,
 * which holds it with the hibernation API. Anything else stays on the gateway.
 */
import { PullRequestId, roomName } from "../events.js";
import { HandshakeError, refuse } from "../session/handshake.js";
import type { Router } from "./server.js";

export function directRoute(rooms: DurableObjectNamespace): Router {
  return (request, url) => {
    const named = url.searchParams.get("pullRequestId");
    if (named === null) return undefined;
    const key = PullRequestId.safeParse(named);
    if (!key.success) {
      return refuse({ code: HandshakeError.BAD_REQUEST.code, message: "Bad request: pullRequestId must be a positive integer" });
    }
    return rooms.getByName(roomName(key.data)).fetch(request);
  };
}
