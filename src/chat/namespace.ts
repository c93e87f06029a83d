/**
 * The chat application on the "/" namespace: validates each documented event and
 * hands it to the connection's ChatConnection, which routes it to its room.
 * Rooms answer acks and broadcast by themselves; nothing here touches their frames.
 */
import type { Config } from "../config.js";
import { InboundSchemas, type ClientEventName } from "../events.js";
import type { NamespaceHandler } from "../gateway/types.js";
import { ChatConnection, refuse } from "./connection.js";
import { verifyIdentity } from "./identity.js";

export function chatNamespace(rooms: DurableObjectNamespace, config: Config): NamespaceHandler<ChatConnection> {
  return {
    async connect({ auth }) {
      if (config.AUTH_SECRET === undefined) return { ok: true, data: new ChatConnection(rooms, config) };
      const verified = await verifyIdentity(auth, config.AUTH_SECRET, config);
      if (!verified.ok) return { ok: false, error: { message: verified.message, data: { code: verified.code } } };
      return { ok: true, data: new ChatConnection(rooms, config, verified.identity) };
    },

    connected(socket) {
      socket.data.endAtExpiry(socket);
    },

    event(socket, name, args, ack) {
      if (!socket.data.admit(socket, name, ack)) return;
      if (!Object.hasOwn(InboundSchemas, name)) {
        return refuse(socket, ack, name, undefined, "unknown_event", `unknown event ${JSON.stringify(name.slice(0, 64))}`);
      }
      const event = name as ClientEventName;
      const parsed = InboundSchemas[event].safeParse(args[0]);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        const field = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
        return refuse(socket, ack, event, undefined, "invalid_payload", `${field}${issue.message}`);
      }
      socket.data.dispatch(socket, { event, data: parsed.data, ack });
    },

    disconnect(socket) {
      socket.data.closeAll(socket);
    },
  };
}
