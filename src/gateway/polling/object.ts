/**
 * The Durable Object behind each long-polling session, generic over its application the
 * way DirectSessions is: a subclass says which application it serves (the chat, or a
 * protocol fixture) and with which Engine.IO options. One object per session, named
 * `eio:<sid>` by the Worker; everything lives in memory (a restarted object has no
 * session, and the client gets 400 "Session ID unknown", reconnects and recovers). It
 * cannot hibernate while its session is open (held GETs, timers), so its bill is mostly
 * duration: logged as `polling_stats` when the session ends or moves (util/meter.ts).
 */
import { DurableObject } from "cloudflare:workers";
import type { EngineServerApp, SessionHandOver } from "../../session/app.js";
import type { EngineOptions } from "../../session/types.js";
import { ObjectMeter } from "../../util/meter.js";
import { readAtMost } from "../../util/read-capped.js";
import { PollingHost, type UpgradeVerdict } from "./host.js";

const NAME_PREFIX = "eio:";

/** The object's name for a session id. */
export function pollingObjectName(sid: string): string {
  return NAME_PREFIX + sid;
}

export interface PollingApplication {
  app: EngineServerApp;
  options: EngineOptions;
}

export abstract class PollingObject<E = unknown> extends DurableObject<E> {
  private host: PollingHost | undefined;
  private maxPayload = 0;
  readonly meter = new ObjectMeter("polling_stats", () => ({ sid: this.host?.sid ?? "" }));

  /** What this object serves; asked once, on the first request. */
  protected abstract application(): PollingApplication;

  private get polling(): PollingHost {
    if (!this.host) {
      const name = this.ctx.id.name;
      if (!name?.startsWith(NAME_PREFIX)) throw new Error(`polling sessions are reached by name (${NAME_PREFIX}<sid>)`);
      const { app, options } = this.application();
      this.maxPayload = options.maxPayload;
      const meter = this.meter;
      this.host = new PollingHost(name.slice(NAME_PREFIX.length), options, app, {
        opened: () => meter.hold(),
        ended: () => {
          meter.release();
          // Ended inside a request: reported once that request is over, so its time counts too.
          meter.reportWhenIdle("end");
        },
      });
    }
    return this.host;
  }

  /** The client's polling requests, forwarded by the Worker as they came. */
  override fetch(request: Request): Promise<Response> {
    return this.meter.request("fetches", async () => {
      const response = await this.polling.fetch(request);
      // A body the session did not read (a POST refused first) is read to its end before the
      // answer goes, up to maxPayload: the Worker forwarding it would otherwise fail to stream the
      // rest ("Can't read from request stream after response has been sent").
      if (!request.bodyUsed) await readAtMost(request.body, this.maxPayload);
      return response;
    });
  }

  /** A WebSocket with this sid reached the Worker. */
  beginUpgrade(): Promise<UpgradeVerdict> {
    return this.meter.request("rpcs", () => this.polling.beginUpgrade());
  }

  /** The Worker answered `2probe`: polling answers `6` from now on. */
  pause(): Promise<void> {
    return this.meter.request("rpcs", () => this.polling.pause());
  }

  /** The WebSocket went away before `5`. */
  abortUpgrade(): Promise<void> {
    return this.meter.request("rpcs", () => this.polling.abortUpgrade());
  }

  /** The client sent `5`: the session's state and queued frames, for the Worker to carry on. */
  handOver(): Promise<SessionHandOver | undefined> {
    return this.meter.request("rpcs", () => this.polling.handOver());
  }
}
