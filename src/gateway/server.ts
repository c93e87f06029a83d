/**
 * The Engine.IO server at `/socket.io/`: checks each request as the reference server
 * does, then serves WebSockets here, in the Worker (the gateway path), unless the
 * application routes the connection elsewhere (a room, for the direct path). Timers
 * drive the heartbeat; a Worker costs CPU time only, no duration.
 *
 * With a polling binding, HTTP long-polling too: each polling session lives in a Durable
 * Object named `eio:<sid>` (a Worker invocation ends with its request), and the upgrade
 * of such a session to WebSocket is terminated here, so the session leaves that object.
 */
import { log } from "../util/log.js";
import { pollingObjectName, type PollingObject } from "./polling/object.js";
import { upgradeFromPolling } from "./polling/upgrade.js";
import { socketIoApp, type EngineServerApp } from "../session/app.js";
import { EngineSession, TimerHeartbeat, type EngineTransport } from "../session/engine.js";
import { checkCommon, HandshakeError, handshakeOf, isWebSocketUpgrade, refuse } from "../session/handshake.js";
import { randomId } from "../util/ids.js";
import { Namespaces, type NamespaceHandler } from "../session/namespaces.js";
import type { EngineOptions } from "../session/types.js";
import { corsHeaders, preflight, withCors } from "./cors.js";

export const POLLING_REFUSED = {
  code: HandshakeError.UNKNOWN_TRANSPORT.code,
  message: "Transport unknown: this server speaks WebSocket only; connect with io(url, { transports: ['websocket'] })",
} as const;

/** Hands a checked WebSocket handshake to another host; undefined keeps it here. */
export type Router = (request: Request, url: URL) => Response | Promise<Response> | undefined;

/** Session ids as randomId makes them: anything else is unknown without asking an object. */
const SID = /^[A-Za-z0-9_-]{20}$/;

export interface EngineServerOptions {
  /** Where polling sessions live; without it polling is refused (POLLING_REFUSED). */
  polling?: DurableObjectNamespace<PollingObject>;
}

/** An Engine.IO server for one application (Socket.IO namespaces, or a protocol fixture's echo). */
export class EngineServer {
  constructor(
    protected readonly app: EngineServerApp,
    private readonly settings: EngineServerOptions = {},
  ) {}

  /** Answers a request to the Engine.IO path: 101 with a live session, a polling answer, or the reference server's error. */
  async handle(request: Request, options: EngineOptions, route?: Router): Promise<Response> {
    if (request.method === "OPTIONS") return preflight(request, options.allowedOrigins);
    const response = await this.answer(request, new URL(request.url), options, route);
    return withCors(response, corsHeaders(request, options.allowedOrigins));
  }

  private async answer(request: Request, url: URL, options: EngineOptions, route?: Router): Promise<Response> {
    const transport = url.searchParams.get("transport");
    const polling = this.settings.polling;
    if (transport === "polling") {
      if (!polling) return refuse(POLLING_REFUSED);
      const sid = url.searchParams.get("sid");
      if (sid === null && request.method !== "GET") return refuse(HandshakeError.BAD_HANDSHAKE_METHOD);
      const refused = checkCommon(request, url, options.allowedOrigins);
      if (refused) return refused;
      if (sid !== null && !SID.test(sid)) return refuse(HandshakeError.UNKNOWN_SID);
      // Too large by its own account: answered without reading it (a body nobody reads is dropped).
      if (Number(request.headers.get("Content-Length") ?? 0) > options.maxPayload) return new Response(null, { status: 413 });
      // A new session gets a fresh sid, and with it its own object.
      return polling.getByName(pollingObjectName(sid ?? randomId())).fetch(request);
    }
    if (transport !== "websocket") return refuse(HandshakeError.UNKNOWN_TRANSPORT);
    const refused = checkCommon(request, url, options.allowedOrigins);
    if (refused) return refused;
    if (!isWebSocketUpgrade(request)) return refuse(HandshakeError.BAD_REQUEST);
    const sid = url.searchParams.get("sid");
    if (sid !== null) {
      // An upgrade from polling: it stays here, whatever else the URL names.
      if (!polling || !SID.test(sid)) return refuse(HandshakeError.UNKNOWN_SID);
      return upgradeFromPolling(polling.getByName(pollingObjectName(sid)), this.app, options, sid);
    }
    return (await route?.(request, url)) ?? this.accept(request, url, options);
  }

  private accept(request: Request, url: URL, options: EngineOptions): Response {
    const { 0: client, 1: server } = new WebSocketPair();
    server.accept();
    // Newer compatibility dates default to "blob", as browsers do; attachments are handled as bytes.
    server.binaryType = "arraybuffer";
    const engine = new EngineSession({ sid: randomId(), openedAt: Date.now() }, webSocketTransport(server), options, new TimerHeartbeat());
    engine.traffic.requests = 1;
    this.app.open(engine, handshakeOf(request, url));
    server.addEventListener("message", (event) => engine.receive(event.data as string | ArrayBuffer));
    server.addEventListener("close", (event) => engine.lost("transport close", event.code));
    server.addEventListener("error", () => engine.lost("transport error"));
    // Over WebSocket there is nothing to upgrade to.
    engine.open();
    log("connect", { sid: engine.sid, origin: request.headers.get("Origin") ?? undefined });
    return new Response(null, { status: 101, webSocket: client });
  }
}

/** The Socket.IO server: `new SocketServer().of("/", handler)`. */
export class SocketServer extends EngineServer {
  readonly namespaces: Namespaces;

  constructor(options: EngineServerOptions = {}) {
    const namespaces = new Namespaces();
    super(socketIoApp(namespaces), options);
    this.namespaces = namespaces;
  }

  /** Registers the application of one namespace (e.g. "/"). */
  of<Data>(nsp: string, handler: NamespaceHandler<Data>): this {
    this.namespaces.of(nsp, handler);
    return this;
  }
}

/** A WebSocket this isolate holds, as an Engine.IO transport. */
export function webSocketTransport(ws: WebSocket): EngineTransport {
  return {
    send: (frame) => ws.send(frame),
    close: (code, reason) => ws.close(code, reason),
  };
}
