/**
 * The Socket.IO endpoint: checks an Engine.IO handshake request, accepts the
 * WebSocket and hands it to a Session. Applications register namespaces with `of`.
 */
import { log } from "../log.js";
import { EIO_VERSION } from "../protocol/engineio.js";
import { Session } from "./session.js";
import type { EngineOptions, Handshake, NamespaceHandler } from "./types.js";

/** The reference server's handshake error codes (engine.io `Server.errors`). */
export const HandshakeError = {
  UNKNOWN_TRANSPORT: { code: 0, message: "Transport unknown" },
  UNKNOWN_SID: { code: 1, message: "Session ID unknown" },
  BAD_REQUEST: { code: 3, message: "Bad request" },
  FORBIDDEN: { code: 4, message: "Forbidden" },
  UNSUPPORTED_PROTOCOL_VERSION: { code: 5, message: "Unsupported protocol version" },
} as const;

export const POLLING_REFUSED = {
  code: HandshakeError.UNKNOWN_TRANSPORT.code,
  message: "Transport unknown: this server speaks WebSocket only; connect with io(url, { transports: ['websocket'] })",
} as const;

export class SocketServer {
  private readonly namespaces = new Map<string, NamespaceHandler>();

  /** Registers the application of one namespace (e.g. "/"). */
  of<Data>(nsp: string, handler: NamespaceHandler<Data>): this {
    this.namespaces.set(nsp, handler);
    return this;
  }

  /** Answers a request to the Engine.IO path: 101 with a live session, or 400 as the reference server does. */
  handleUpgrade(request: Request, options: EngineOptions): Response {
    const url = new URL(request.url);
    const transport = url.searchParams.get("transport");
    if (transport === "polling") return refuse(POLLING_REFUSED);
    if (transport !== "websocket") return refuse(HandshakeError.UNKNOWN_TRANSPORT);
    // A sid means an upgrade from polling, which this server never hands out.
    if (url.searchParams.has("sid")) return refuse(HandshakeError.UNKNOWN_SID);
    if (url.searchParams.get("EIO") !== EIO_VERSION) return refuse(HandshakeError.UNSUPPORTED_PROTOCOL_VERSION);
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") return refuse(HandshakeError.BAD_REQUEST);
    // Browsers always send Origin on a WebSocket; other clients may omit it (and could forge it anyway).
    const origin = request.headers.get("Origin");
    if (options.allowedOrigins && origin !== null && !options.allowedOrigins.includes(origin)) {
      return refuse(HandshakeError.FORBIDDEN, 403);
    }

    const { 0: client, 1: server } = new WebSocketPair();
    server.accept();
    new Session(server, options, this.namespaces, handshakeOf(request, url)).start();
    return new Response(null, { status: 101, webSocket: client });
  }
}

export function refuse(error: { code: number; message: string }, status = 400): Response {
  log("handshake_refused", { status, code: error.code });
  return Response.json(error, { status });
}

function handshakeOf(request: Request, url: URL): Handshake {
  return {
    query: Object.fromEntries(url.searchParams),
    headers: Object.fromEntries(request.headers),
    address: request.headers.get("CF-Connecting-IP") ?? undefined,
    origin: request.headers.get("Origin") ?? undefined,
  };
}
