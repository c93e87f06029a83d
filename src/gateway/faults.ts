/**
 * Fault injection for the chaos harness and tests, behind FAULT_INJECTION=on (404 otherwise):
 *   POST /__faults/rooms/:pullRequestId/restart            the room's object restarts, as after a crash
 *   POST /__faults/connections/:socketId/replace-links     a gateway connection's links are replaced
 *                                                          as their watchdog replaces them, at the
 *                                                          connection's next event (a link is I/O of
 *                                                          the connection's own request, not of this one)
 * The second reaches connections held by this isolate only (under `wrangler dev`, all of them).
 */
import { Hono } from "hono";
import { faultTargets } from "./chat.js";
import { configOf } from "../chat/config.js";
import { PullRequestId, roomName } from "../chat/events.js";

export const faults = new Hono<{ Bindings: Env }>()
  .use("/__faults/*", async (c, next) => {
    if (configOf(c.env).FAULT_INJECTION !== "on") return c.notFound();
    await next();
  })
  .post("/__faults/rooms/:pullRequestId/restart", async (c) => {
    const key = PullRequestId.safeParse(c.req.param("pullRequestId"));
    if (!key.success) return c.json({ ok: false, error: "pullRequestId must be a positive integer" }, 400);
    // The reset makes the call fail: that is the fault working.
    await c.env.PR_ROOM.getByName(roomName(key.data)).fault("restart").catch(() => undefined);
    return c.json({ ok: true });
  })
  .post("/__faults/connections/:socketId/replace-links", (c) => {
    const rooms = faultTargets.get(c.req.param("socketId"));
    if (!rooms) return c.json({ ok: false, error: "no such connection in this isolate" }, 404);
    rooms.faultPending = true;
    return c.json({ ok: true, pending: true });
  });
