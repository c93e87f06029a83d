/**
 * The edge app: the Socket.IO endpoint, the HTTP API, health. Configuration is parsed
 * here, once per env, and handed down typed; a Worker whose configuration does not parse
 * answers everything as gateway/misconfigured.ts says.
 */
import { Hono } from "hono";
import { apiApp } from "./api/app.js";
import { gatewayChat } from "./gateway/chat.js";
import { configOf, engineOptions, type Config } from "./chat/config.js";
import { CHAT_NAMESPACE } from "./chat/events.js";
import { faults } from "./gateway/faults.js";
import { directRoute } from "./gateway/direct-route.js";
import { answerMisconfigured, misconfiguration } from "./gateway/misconfigured.js";
import { SocketServer } from "./gateway/server.js";
import { handleWebhookQueue } from "./gateway/webhooks.js";
import type { WebhookMessage } from "./chat/webhooks.js";
import { log } from "./util/log.js";

export { PrRoom } from "./room/pr-room.js";
export { ConnectionRecord } from "./gateway/record.js";
export { PollingSession } from "./gateway/polling/session.js";

const servers = new WeakMap<Env, SocketServer>();

function socketServer(env: Env, config: Config): SocketServer {
  let server = servers.get(env);
  if (!server) {
    server = new SocketServer({ polling: env.POLLING_SESSION }).of(CHAT_NAMESPACE, gatewayChat(env, config));
    servers.set(env, server);
  }
  return server;
}

const app = new Hono<{ Bindings: Env }>()
  .use(async (c, next) => {
    const problems = misconfiguration(c.env);
    if (problems) return answerMisconfigured(c.req.raw, c.env, problems);
    await next();
  })
  .get("/healthz", (c) => c.json({ ok: true, service: "pr-rooms" }))
  // The API app is built on its first request (api/app.ts); the request goes to it unchanged.
  .mount("/api", (request, env, ctx) => apiApp().fetch(request, env, ctx), { replaceRequest: false })
  .route("/", faults)
  .all("/socket.io/*", (c) => {
    const config = configOf(c.env);
    return socketServer(c.env, config).handle(c.req.raw, engineOptions(config), directRoute(c.env.PR_ROOM));
  })
  .onError((error, c) => {
    log("handler_error", { path: c.req.path, error: String(error) });
    return c.json({ ok: false, error: "internal error" }, 500);
  });

/** The queue consumer: webhooks the rooms enqueued, and their dead letters (gateway/webhooks.ts). */
const queue = (batch: MessageBatch<WebhookMessage>, env: Env): Promise<void> => handleWebhookQueue(batch, env);

// The Hono app (its `fetch`, and `request` for tests) with the `queue` handler beside it.
export default Object.assign(app, { queue });
