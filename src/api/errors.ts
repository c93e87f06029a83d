/**
 * The HTTP API's errors: one JSON shape, `{ ok: false, error: { code, message } }`, the
 * same as a refused socket event, with a status per code. Codes are the chat's own
 * (src/chat/events.ts; `not_found` also answers a route that does not exist), the token codes a
 * socket CONNECT gets, and four that only HTTP has (kept out of ErrorCode, so the socket
 * client's types list only what a socket can get).
 */
import { z } from "zod";
import { AuthErrorCode } from "../chat/identity.js";
import { ErrorCode } from "../chat/events.js";

export const ApiErrorCode = z.enum([
  ...ErrorCode.options,
  ...AuthErrorCode.options,
  /** The body is larger than MAX_PAYLOAD_BYTES. */
  "payload_too_large",
  /** AUTH_SECRET is not set, so nobody could be authenticated: the API is off. */
  "api_disabled",
  /** An unexpected error; the details go to the logs. */
  "internal_error",
  /** The Worker's configuration does not parse; the log names the variable (src/gateway/misconfigured.ts answers). */
  "server_misconfigured",
]);
export type ApiErrorCode = z.infer<typeof ApiErrorCode>;

/** The statuses the API answers errors with, and the codes each can carry (the OpenAPI document lists them so). */
export const ERROR_STATUSES = {
  400: ["invalid_payload", "message_too_long"],
  401: ["auth_required", "token_invalid", "token_expired"],
  403: ["forbidden"],
  404: ["not_found"],
  409: ["history_disabled"],
  413: ["payload_too_large"],
  415: ["invalid_payload"],
  429: ["rate_limited"],
  500: ["internal_error", "server_misconfigured"],
  501: ["api_disabled"],
  503: ["room_unavailable"],
} as const satisfies Record<number, readonly ApiErrorCode[]>;
export type ErrorStatus = keyof typeof ERROR_STATUSES;
export type CodeOf<S extends ErrorStatus> = (typeof ERROR_STATUSES)[S][number];

/** The status a code is answered with (the first that carries it). */
export function statusOf(code: ApiErrorCode): ErrorStatus | undefined {
  for (const [status, codes] of Object.entries(ERROR_STATUSES)) {
    if ((codes as readonly ApiErrorCode[]).includes(code)) return Number(status) as ErrorStatus;
  }
  return undefined;
}

/** The body of an error with `status`: its `code` is one of that status's codes. */
export function errorBody<S extends ErrorStatus>(status: S) {
  const codes = ERROR_STATUSES[status] as unknown as [CodeOf<S>, ...CodeOf<S>[]];
  return z.object({
    ok: z.literal(false),
    error: z.object({ code: z.enum(codes), message: z.string() }),
  });
}

/** A refusal thrown from middleware or a handler; the API's onError answers it. */
export class ApiError extends Error {
  override name = "ApiError";

  private constructor(
    readonly status: ErrorStatus,
    readonly code: ApiErrorCode,
    message: string,
    readonly headers: Record<string, string>,
  ) {
    super(message);
  }

  /** A refusal whose code belongs to its status; `headers` for WWW-Authenticate. */
  static of<S extends ErrorStatus>(status: S, code: CodeOf<S>, message: string, headers: Record<string, string> = {}): ApiError {
    return new ApiError(status, code, message, headers);
  }

  response(): Response {
    return Response.json(
      { ok: false, error: { code: this.code, message: this.message } },
      { status: this.status, headers: this.headers },
    );
  }
}
