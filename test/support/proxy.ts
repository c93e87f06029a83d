/**
 * A TCP proxy on loopback in front of a served Worker, to cut the network under a client the
 * way a sleeping laptop or a dead Wi-Fi does: `blackhole()` stops carrying bytes on every
 * connection open now, in both directions, and closes nothing, so neither end hears a thing.
 * Connections opened later are carried as usual.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

export interface CuttableProxy {
  /** http://127.0.0.1:PORT, in front of the target. */
  url: string;
  /** Stops carrying bytes on every connection open now; they stay open. */
  blackhole(): void;
  close(): Promise<void>;
}

export async function cuttableProxy(target: string): Promise<CuttableProxy> {
  const { hostname, port } = new URL(target);
  const pairs = new Set<[Socket, Socket]>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connect(Number(port), hostname);
    const pair: [Socket, Socket] = [inbound, outbound];
    pairs.add(pair);
    sockets.add(inbound).add(outbound);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    const forget = () => {
      pairs.delete(pair);
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on("error", forget).on("close", forget);
    outbound.on("error", forget).on("close", forget);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the proxy has no port");
  return {
    url: `http://127.0.0.1:${address.port}`,
    blackhole() {
      for (const [inbound, outbound] of pairs) {
        inbound.unpipe(outbound);
        outbound.unpipe(inbound);
        // Whatever arrives from now on is read and dropped: a cut cable, not a full buffer.
        inbound.removeAllListeners("data").on("data", () => undefined);
        outbound.removeAllListeners("data").on("data", () => undefined);
      }
      pairs.clear();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
