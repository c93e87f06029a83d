/**
 * The edge app: Socket.IO endpoint, health check. Configuration is parsed here,
 * once per env, and handed down typed.
 */
import { Hono } from "hono";
import { chatNamespace } from "./chat/namespace.js";
import { ConfigError, configOf, type Config } from "./config.js";
import { CHAT_NAMESPACE } from "./events.js";
import { SocketServer } from "./gateway/server.js";
import { log } from "./log.js";
import type { EngineOptions } from "./gateway/types.js";

export { PrRoom } from "./room/pr-room.js";

const servers = new WeakMap<Env, SocketServer>();

function socketServer(env: Env, config: Config): SocketServer {
  let server = servers.get(env);
  if (!server) {
    server = new SocketServer().of(CHAT_NAMESPACE, chatNamespace(env.PR_ROOM, config));
    servers.set(env, server);
  }
  return server;
}

function engineOptions(config: Config): EngineOptions {
  return {
    pingInterval: config.PING_INTERVAL_MS,
    pingTimeout: config.PING_TIMEOUT_MS,
    maxPayload: config.MAX_PAYLOAD_BYTES,
    connectTimeout: config.CONNECT_TIMEOUT_MS,
    allowedOrigins: config.ALLOWED_ORIGINS,
  };
}

const app = new Hono<{ Bindings: Env }>()
  .get("/healthz", (c) => {
    configOf(c.env);
    return c.json({ ok: true, service: "pr-rooms" });
  })
  .all("/socket.io/*", (c) => {
    const config = configOf(c.env);
    return socketServer(c.env, config).handleUpgrade(c.req.raw, engineOptions(config));
  })
  .onError((error, c) => {
    if (error instanceof ConfigError) {
      // The details (which variable, why) go to the logs, not to whoever asked.
      log("config_error", { error: error.message });
      return c.json({ ok: false, error: "server misconfigured; see the logs" }, 500);
    }
    log("handler_error", { path: c.req.path, error: String(error) });
    return c.json({ ok: false, error: "internal error" }, 500);
  });

export default app;
