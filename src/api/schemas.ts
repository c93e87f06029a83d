/**
 * What the HTTP API takes and answers, built from the chat's own schemas so a message
 * posted over HTTP is checked exactly as one sent over a socket. The OpenAPI document is
 * generated from these (the `z` of @hono/zod-openapi is zod's, with `.openapi()` added).
 * Built on first use, with the API app (app.ts), so they stay off the start-up path; the
 * chat's schemas are lazy (`lazySchema`), and these annotate the schemas they wrap.
 */
import { z } from "@hono/zod-openapi";
import { ClientMessageId, DeleteAck, HistoryAck, JoinAck, MAX_HISTORY_PAGE, MessageId, MessageText, PullRequestId, SendAck } from "../chat/events.js";
import type { RoomInfo } from "../chat/room-api.js";
import { once } from "../util/once.js";

export const apiSchemas = once(() => {
  const RoomParams = z.object({
    id: PullRequestId.unwrap().openapi({
      description: "The pull request: 1 to 20 decimal digits (`123` and `0123` are the same room)",
      example: "123",
    }),
  });

  const PublishBody = z
    .object({
      message: MessageText.unwrap().openapi({
        description: "1 to MAX_MESSAGE_LENGTH (default 4000) characters, not only white space",
        example: "Build #512 passed",
      }),
      clientMessageId: ClientMessageId.unwrap().optional().openapi({
        description:
          "Your id for this message: a repeat from the same subject to the same room within the room's recovery window " +
          "is answered with the first message's id and seq and is not delivered again",
        example: "build-512",
      }),
    })
    .openapi("PublishMessage");

  /** The same answer a socket's send ack carries. */
  const Published = SendAck.unwrap().openapi("Published");

  /** Who is in the room now: the join ack less its `ok` and `seq`. */
  const RoomInfoBody = JoinAck.unwrap().omit({ ok: true, seq: true }).openapi("RoomInfo") satisfies z.ZodType<RoomInfo>;

  const MessageParams = RoomParams.extend({ messageId: MessageId.unwrap().openapi({ description: "The message's id, as `pr-room-message` gave it" }) });

  /** Query strings are text: the numbers are coerced, then checked as the socket event's are. */
  const HistoryQuery = z.object({
    before: z.coerce
      .number({ error: "before must be a seq (a positive integer)" })
      .int({ error: "before must be a whole number" })
      .positive({ error: "before must be positive" })
      .optional()
      .openapi({ description: "The page ends just before this seq; the latest messages without it", example: 120 }),
    limit: z.coerce
      .number({ error: "limit must be a number" })
      .int({ error: "limit must be a whole number" })
      .min(1, { error: "limit must be at least 1" })
      .max(MAX_HISTORY_PAGE, { error: `limit must be at most ${MAX_HISTORY_PAGE}` })
      .default(50)
      .openapi({ description: `1 to ${MAX_HISTORY_PAGE}, default 50`, example: 50 }),
  });

  /** The same answer a socket's `get-pr-room-history` ack carries. */
  const HistoryPage = HistoryAck.unwrap().openapi("HistoryPage");
  const Deleted = DeleteAck.unwrap().openapi("Deleted");

  return { RoomParams, PublishBody, Published, RoomInfoBody, MessageParams, HistoryQuery, HistoryPage, Deleted };
});

export type PublishBody = z.infer<ReturnType<typeof apiSchemas>["PublishBody"]>;
