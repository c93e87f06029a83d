/**
 * The Engine.IO server at `/socket.io/`: checks each handshake as the reference server
 * does, then serves the WebSocket here, in the Worker (the gateway path), unless the
 * application routes the connection elsewhere (a room, for the direct path). Timers
 * drive the heartbeat; a Worker costs CPU time only, no duration.
 */
import { log } from "../log.js";
import { EngineSession, TimerHeartbeat, type EngineTransport } from "../session/engine.js";
import { checkCommon, HandshakeError, handshakeOf, isWebSocketUpgrade, refuse } from "../session/handshake.js";
import { randomId } from "../session/ids.js";
import { Namespaces, type NamespaceHandler } from "../session/namespaces.js";
import { SocketLayer } from "../session/sockets.js";
import { CloseCode, type EngineOptions } from "../session/types.js";

export const POLLING_REFUSED = {
  code: HandshakeError.UNKNOWN_TRANSPORT.code,
  message: "Transport unknown: this server speaks WebSocket only; connect with io(url, { transports: ['websocket'] })",
} as const;

/** Hands a checked WebSocket handshake to another host; undefined keeps it here. */
export type Router = (request: Request, url: URL) => Response | Promise<Response> | undefined;

export class SocketServer {
  readonly namespaces = new Namespaces();

  /** Registers the application of one namespace (e.g. "/"). */
  of<Data>(nsp: string, handler: NamespaceHandler<Data>): this {
    this.namespaces.of(nsp, handler);
    return this;
  }

  /** Answers a request to the Engine.IO path: 101 with a live session, or the reference server's error. */
  async handle(request: Request, options: EngineOptions, route?: Router): Promise<Response> {
    const url = new URL(request.url);
    const transport = url.searchParams.get("transport");
    if (transport === "polling") return refuse(POLLING_REFUSED);
    if (transport !== "websocket") return refuse(HandshakeError.UNKNOWN_TRANSPORT);
    // A sid means an upgrade from polling, which this server never hands out.
    if (url.searchParams.has("sid")) return refuse(HandshakeError.UNKNOWN_SID);
    const refused = checkCommon(request, url, options.allowedOrigins);
    if (refused) return refused;
    if (!isWebSocketUpgrade(request)) return refuse(HandshakeError.BAD_REQUEST);
    return (await route?.(request, url)) ?? this.accept(request, url, options);
  }

  private accept(request: Request, url: URL, options: EngineOptions): Response {
    const { 0: client, 1: server } = new WebSocketPair();
    server.accept();
    // Newer compatibility dates default to "blob", as browsers do; attachments are handled as bytes.
    server.binaryType = "arraybuffer";
    const engine = new EngineSession({ sid: randomId(), openedAt: Date.now() }, webSocketTransport(server), options, new TimerHeartbeat());
    const layer = new SocketLayer(engine, this.namespaces, handshakeOf(request, url));
    server.addEventListener("message", (event) => engine.receive(event.data as string | ArrayBuffer));
    server.addEventListener("close", (event) => engine.lost("transport close", event.code));
    server.addEventListener("error", () => engine.lost("transport error"));
    engine.open();
    log("connect", { sid: engine.sid, origin: request.headers.get("Origin") ?? undefined });
    // A client that never joins a namespace holds a socket for nothing.
    const connectTimer = setTimeout(() => {
      if (layer.socketCount === 0) engine.close("server namespace disconnect", CloseCode.normal, "connect timeout");
    }, options.connectTimeout);
    server.addEventListener("close", () => clearTimeout(connectTimer));
    return new Response(null, { status: 101, webSocket: client });
  }
}

/** A WebSocket this isolate holds, as an Engine.IO transport. */
export function webSocketTransport(ws: WebSocket): EngineTransport {
  return {
    send: (frame) => ws.send(frame),
    close: (code, reason) => ws.close(code, reason),
  };
}
