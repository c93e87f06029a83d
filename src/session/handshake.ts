/**
 * The checks every Engine.IO request passes before any session exists, with the
 * reference server's error codes and bodies (engine.io `Server.errors`).
 */
import { log } from "../util/log.js";
import { EIO_VERSION } from "../protocol/engineio.js";
import type { Handshake } from "./types.js";

export const HandshakeError = {
  UNKNOWN_TRANSPORT: { code: 0, message: "Transport unknown" },
  UNKNOWN_SID: { code: 1, message: "Session ID unknown" },
  BAD_HANDSHAKE_METHOD: { code: 2, message: "Bad handshake method" },
  BAD_REQUEST: { code: 3, message: "Bad request" },
  FORBIDDEN: { code: 4, message: "Forbidden" },
  UNSUPPORTED_PROTOCOL_VERSION: { code: 5, message: "Unsupported protocol version" },
} as const;

export type HandshakeErrorBody = { code: number; message: string };

export function refuse(error: HandshakeErrorBody, status = 400, headers?: HeadersInit): Response {
  log("handshake_refused", { status, code: error.code });
  return Response.json(error, { status, headers });
}

/** Browsers always send Origin on a WebSocket and on cross-origin XHR; other clients may omit it (and could forge it). */
export function originAllowed(request: Request, allowedOrigins: readonly string[] | undefined): boolean {
  const origin = request.headers.get("Origin");
  return !allowedOrigins || origin === null || allowedOrigins.includes(origin);
}

/** Version and origin: what every transport checks first. */
export function checkCommon(request: Request, url: URL, allowedOrigins: readonly string[] | undefined): Response | undefined {
  if (url.searchParams.get("EIO") !== EIO_VERSION) return refuse(HandshakeError.UNSUPPORTED_PROTOCOL_VERSION);
  if (!originAllowed(request, allowedOrigins)) return refuse(HandshakeError.FORBIDDEN, 403);
  return undefined;
}

export function isWebSocketUpgrade(request: Request): boolean {
  return request.headers.get("Upgrade")?.toLowerCase() === "websocket";
}

export function handshakeOf(request: Request, url: URL): Handshake {
  return {
    query: Object.fromEntries(url.searchParams),
    headers: Object.fromEntries(request.headers),
    address: request.headers.get("CF-Connecting-IP") ?? undefined,
    origin: request.headers.get("Origin") ?? undefined,
  };
}
