/**
 * An Engine.IO server's application, as a session host sees it: how a session's upper
 * layer starts, how it hands itself over when the session moves to another host (a
 * polling session upgrading to WebSocket), and how it is taken over there. Socket.IO
 * apps are `socketIoApp(namespaces)`; the engine.io protocol fixture has an echo.
 */
import type { EngineApplication, EngineSession, EngineState } from "./engine.js";
import type { NamespaceRegistry } from "./namespaces.js";
import { SocketLayer, type SocketLayerSnapshot } from "./sockets.js";
import { CloseCode, type Frame, type Handshake } from "./types.js";

/** A session's upper layer while a host holds it. */
export interface HostedApp extends EngineApplication {
  /**
   * The session is moving: let work in flight finish (no later than `deadline`, ms since
   * the epoch), then return what the new host needs, or undefined if it cannot move. The
   * application sends nothing after this.
   */
  handOver(deadline: number): Promise<unknown>;
}

export interface EngineServerApp {
  /** Transports a polling session offers in its open packet. */
  readonly upgrades: readonly string[];
  /** A new session's upper layer. */
  open(engine: EngineSession, handshake: Handshake): HostedApp;
  /** The upper layer of a session that moved here, from what handOver returned. */
  takeOver(engine: EngineSession, handshake: Handshake, snapshot: unknown): Promise<HostedApp>;
}

/** Everything a moving session carries: plain, structured-cloneable data. */
export interface SessionHandOver {
  engine: EngineState;
  handshake: Handshake;
  /** When the client was last pinged (ms since the epoch; 0: never): the new host keeps the beat. */
  lastPingAt: number;
  /**
   * When each ping still unanswered went out (heartbeat or probe, oldest first): their pongs
   * come to the new host, which matches them instead of taking them for pongs nobody asked for.
   */
  pings?: number[];
  /** Frames queued for the client and not yet delivered, oldest first: they go out first. */
  queued: Frame[];
  /** The application's part. */
  app: unknown;
}

/**
 * Socket.IO on a session: the namespaces' handlers over a SocketLayer, with the connect
 * timeout (the session's connectTimeout). `upgrades`: what a polling session offers.
 */
export function socketIoApp(namespaces: NamespaceRegistry, upgrades: readonly string[] = ["websocket"]): EngineServerApp {
  /** A client that never joins a namespace holds a session for nothing. */
  const connectDeadline = (engine: EngineSession, layer: SocketLayer) => {
    const wait = engine.state.openedAt + engine.options.connectTimeout - Date.now();
    const timer = setTimeout(() => {
      if (layer.socketCount === 0) engine.close("server namespace disconnect", CloseCode.normal, "connect timeout");
    }, Math.max(0, wait));
    layer.onClosed = () => clearTimeout(timer);
  };
  return {
    upgrades,
    open(engine, handshake) {
      const layer = new SocketLayer(engine, namespaces, handshake);
      connectDeadline(engine, layer);
      return layer;
    },
    async takeOver(engine, handshake, snapshot) {
      const layer = new SocketLayer(engine, namespaces, handshake);
      await layer.takeOver(snapshot as SocketLayerSnapshot);
      if (layer.socketCount === 0) connectDeadline(engine, layer);
      return layer;
    },
  };
}
