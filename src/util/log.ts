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
  | "misconfigured";

export function log(evt: LogEvent, fields: Record<string, string | number | boolean | undefined>): void {
  const line = JSON.stringify({ evt, ...fields });
  if (evt === "handler_error" || evt === "config_error") console.error(line);
  else console.log(line);
}
