/**
 * Structured logs: one JSON line per connection lifecycle event and per refused
 * event, for `wrangler tail`. `sid` is always the Engine.IO session and `socketId` the
 * Socket.IO connection, so lines join. Never message bodies, tokens or pids.
 */
export type LogEvent =
  | "handshake_refused"
  | "connect"
  | "connect_refused"
  | "disconnect"
  | "moved"
  | "upgrade"
  | "upgrade_failed"
  | "protocol_error"
  | "slow_reader"
  | "join"
  | "resume"
  | "superseded"
  | "leave"
  | "refused"
  | "recovered"
  | "not_recovered"
  | "room_link_lost"
  | "messages_lost"
  | "fault"
  | "room_stats"
  | "record_stats"
  | "polling_stats"
  | "connection_stats"
  | "handler_error"
  | "config_error"
  | "misconfigured"
  // Webhooks: the room's outbox (room/outbox.ts), the Worker's queue consumer (gateway/webhooks.ts).
  | "webhook_send_failed"
  | "webhook_dropped"
  | "webhook_delivered"
  | "webhook_failed"
  | "webhook_dead";

export function log(evt: LogEvent, fields: Record<string, string | number | boolean | undefined>): void {
  const line = JSON.stringify({ evt, ...fields });
  if (evt === "handler_error" || evt === "config_error" || evt === "webhook_dead") console.error(line);
  else console.log(line);
}
