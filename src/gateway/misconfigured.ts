/**
 * A Worker whose configuration does not parse serves nothing but the news: the log names
 * each bad variable and its rule (`misconfigured`, never a secret's value), socket.io clients
 * get a CONNECT_ERROR "server misconfigured" (`data.code` "server_misconfigured") over
 * WebSocket and polling alike, so they stop retrying instead of seeing a bare "websocket
 * error", and every other request a 500 with that code.
 */
import { ConfigError, configOf, describeProblem, engineOptions, parseConfig, type ConfigProblem } from "../chat/config.js";
import { socketIoApp } from "../session/app.js";
import type { NamespaceHandler } from "../session/namespaces.js";
import { log } from "../util/log.js";
import type { PollingApplication } from "./polling/object.js";
import { EngineServer } from "./server.js";

/** What a client of a misconfigured Worker is told; the details go to the log. */
export const MISCONFIGURED = { code: "server_misconfigured", message: "server misconfigured" } as const;

/** Refuses every CONNECT, in any namespace: there is no chat to connect to. */
const refuseAll: NamespaceHandler = {
  connect: () => ({ ok: false, error: { message: MISCONFIGURED.message, data: { code: MISCONFIGURED.code } } }),
  event: () => undefined,
};

/** Socket.IO whose every CONNECT is refused, with the default settings (the env cannot supply any); no upgrade. */
export const misconfiguredPolling: PollingApplication = { app: socketIoApp({ get: () => refuseAll }, []), options: engineOptions(parseConfig({})) };

const servers = new WeakMap<Env, EngineServer>();

/** The configuration's problems, or undefined when it parses (parsed once per env, as configOf does). */
export function misconfiguration(env: Env): readonly ConfigProblem[] | undefined {
  try {
    configOf(env);
    return undefined;
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

/** At most one `misconfigured` line per isolate every LOG_EVERY_MS: each client retry would log another. */
const LOG_EVERY_MS = 10_000;
let loggedAt = -Infinity;

/** The answer to any request while the configuration has `problems`. */
export function answerMisconfigured(request: Request, env: Env, problems: readonly ConfigProblem[]): Response | Promise<Response> {
  const now = Date.now();
  if (now - loggedAt >= LOG_EVERY_MS) {
    loggedAt = now;
    // describeProblem never shows a secret's value.
    log("misconfigured", { variables: problems.map((problem) => problem.variable).join(","), problems: problems.map(describeProblem).join("; ") });
  }
  const path = new URL(request.url).pathname;
  if (path === "/socket.io" || path.startsWith("/socket.io/")) {
    let server = servers.get(env);
    if (!server) servers.set(env, (server = new EngineServer(misconfiguredPolling.app, { polling: env.POLLING_SESSION })));
    // No direct route: the rooms could not start either, so every WebSocket is answered here.
    return server.handle(request, misconfiguredPolling.options);
  }
  return Response.json({ ok: false, error: { code: MISCONFIGURED.code, message: `${MISCONFIGURED.message}; see the logs` } }, { status: 500 });
}
