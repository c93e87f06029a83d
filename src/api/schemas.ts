/**
 * What the HTTP API takes and answers, built from the chat's own schemas so a message
 * posted over HTTP is checked exactly as one sent over a socket. The OpenAPI document is
 * generated from these (the `z` of @hono/zod-openapi is zod's, with `.openapi()` added).
 * Built on first use, with the API app (app.ts), so they stay off the start-up path; the
 * chat's schemas are lazy (`lazySchema`), and these annotate the schemas they wrap.
 */
import { z } from "@hono/zod-openapi";
import { ClientMessageId, JoinAck, MessageText, PullRequestId, SendAck } from "../chat/events.js";
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

  return { RoomParams, PublishBody, Published, RoomInfoBody };
});

export type PublishBody = z.infer<ReturnType<typeof apiSchemas>["PublishBody"]>;
