/** What a room offers the HTTP API over RPC (the `PrRoom` object's publish and who-is-here; history and moderation answer as the socket events do). */
import type { ErrorBody } from "./events.js";

/** What a backend publishes over the HTTP API. */
export interface PublishRequest {
  username: string;
  message: string;
  clientMessageId?: string;
}

export type PublishResult = { ok: true; id: string; seq: number } | { ok: false; error: ErrorBody };

export interface RoomInfo {
  pullRequestId: number | string;
  members: number;
  users: string[];
}
