/**
 * CORS for the Engine.IO endpoint, as engine.io's `cors: { origin, credentials: true }`
 * does: an allowed Origin is echoed back with credentials allowed (polling requests may
 * carry cookies), and preflights are answered. Which origins are allowed is
 * ALLOWED_ORIGINS; unset, any origin is echoed (engine.io's `origin: true`), as any
 * origin may open a WebSocket then too. A disallowed origin never gets here: it is
 * refused 403 before any session exists (checkCommon).
 */
import { HandshakeError, originAllowed, refuse } from "../session/handshake.js";

/** The CORS headers for a request's origin, or none (no Origin, or not allowed). */
export function corsHeaders(request: Request, allowedOrigins: readonly string[] | undefined): Record<string, string> | undefined {
  const origin = request.headers.get("Origin");
  if (origin === null || !originAllowed(request, allowedOrigins)) return undefined;
  return { "Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true", Vary: "Origin" };
}

/** Answers a preflight: 204 with the methods polling uses and the headers asked for, or 403. */
export function preflight(request: Request, allowedOrigins: readonly string[] | undefined): Response {
  if (!originAllowed(request, allowedOrigins)) return refuse(HandshakeError.FORBIDDEN, 403);
  const headers: Record<string, string> = {
    ...corsHeaders(request, allowedOrigins),
    "Access-Control-Allow-Methods": "GET, POST",
    "Access-Control-Max-Age": "600",
    Vary: "Origin, Access-Control-Request-Headers",
  };
  const asked = request.headers.get("Access-Control-Request-Headers");
  if (asked) headers["Access-Control-Allow-Headers"] = asked;
  return new Response(null, { status: 204, headers });
}

/** The same response with CORS headers added (never on a 101: its socket is the answer). */
export function withCors(response: Response, headers: Record<string, string> | undefined): Response {
  if (!headers || response.status === 101) return response;
  const copy = new Response(response.body, response);
  for (const [name, value] of Object.entries(headers)) copy.headers.set(name, value);
  return copy;
}
