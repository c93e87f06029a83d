/**
 * PollingSession: the Durable Object holding one chat connection over HTTP long-polling
 * (`eio:<sid>`), with the same chat as a gateway WebSocket (links to the rooms). When
 * the client upgrades, the connection moves to the Worker and this object goes idle.
 * With RECOVERY_WINDOW_MS=0 the rooms keep no log to resume from, so the connection
 * could not move without losing messages: it offers no upgrade and stays on polling.
 */
import { configOf, engineOptions } from "../../chat/config.js";
import { CHAT_NAMESPACE } from "../../chat/events.js";
import { socketIoApp } from "../../session/app.js";
import { Namespaces } from "../../session/namespaces.js";
import { PollingObject, type PollingApplication } from "./object.js";
import { gatewayChat } from "../chat.js";
import { misconfiguration, misconfiguredPolling } from "../misconfigured.js";

export class PollingSession extends PollingObject<Env> {
  protected application(): PollingApplication {
    // A session of a misconfigured Worker refuses its CONNECT, saying so.
    if (misconfiguration(this.env)) return misconfiguredPolling;
    const config = configOf(this.env);
    const upgrades = config.RECOVERY_WINDOW_MS > 0 ? ["websocket"] : [];
    const namespaces = new Namespaces().of(CHAT_NAMESPACE, gatewayChat(this.env, config));
    return { app: socketIoApp(namespaces, upgrades), options: engineOptions(config) };
  }
}
