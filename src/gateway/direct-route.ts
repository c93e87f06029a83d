/**
 * The direct path's entry: a client that names its pull request in the URL
 * (`io(url, { query: { pullRequestId: 123 } })`) gets its socket handed to that room,
 * which holds it with the hibernation API. Anything else stays on the gateway.
 */
import { PullRequestId, roomName } from "../chat/events.js";
import type { Router } from "./server.js";

export function directRoute(rooms: DurableObjectNamespace): Router {
  return (request, url) => {
    const named = url.searchParams.get("pullRequestId");
    if (named === null) return undefined;
    const key = PullRequestId.safeParse(named);
    // A bad id stays on the gateway, which refuses its CONNECT with a Socket.IO CONNECT_ERROR
    // (`invalid_payload`), as over polling: a client shown a bare HTTP 400 before the upgrade
    // sees only "websocket error" and retries forever.
    if (!key.success) return undefined;
    return rooms.getByName(roomName(key.data)).fetch(request);
  };
}
