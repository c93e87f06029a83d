/**
 * A Worker whose configuration does not parse, under `wrangler dev` with bad vars: the log
 * names each variable and its rule, the real socket.io-client gets a `connect_error` that
 * says the server is misconfigured (over WebSocket and over polling), not a bare
 * "websocket error", and the HTTP API answers 500 server_misconfigured. No secret's value
 * shows anywhere.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { once, until } from "../support/client.js";
import { wranglerDev } from "../support/wrangler-dev.js";
import type { ServedWorker } from "../support/worker.js";

/** Too short (the Worker needs 32 characters), and a value that must never be printed. */
const SHORT_SECRET = "short-secret-do-not-print";

let worker: ServedWorker;
const sockets = new Set<Socket>();

beforeAll(async () => {
  worker = await wranglerDev("wrangler.toml", { vars: { AUTH_SECRET: SHORT_SECRET, PING_INTERVAL_MS: "abc" } });
});
afterAll(async () => {
  for (const socket of sockets) socket.close();
  await worker?.close();
});

function open(options: Partial<ManagerOptions & SocketOptions>): Socket {
  const socket = io(worker.url, { forceNew: true, reconnection: false, ...options });
  sockets.add(socket);
  return socket;
}

describe("a misconfigured Worker", () => {
  it.each([
    ["WebSocket", ["websocket"]],
    ["polling", ["polling"]],
    ["polling, then WebSocket (the default)", ["polling", "websocket"]],
  ])("gives socket.io-client over %s a connect_error that says so", async (_name, transports) => {
    const socket = open({ transports });
    const [error] = (await once(socket, "connect_error", 10_000)) as [Error & { data?: unknown }];
    expect(error.message).toBe("server misconfigured");
    expect(error.data).toEqual({ code: "server_misconfigured" });
    expect(socket.connected).toBe(false);
    // Refused, not lost: the client does not retry a refused CONNECT.
    expect(socket.active).toBe(false);
  });

  it("logs one line naming each bad variable and its rule, never the secret", async () => {
    const logs = worker.logs!;
    await until(() => logs().includes('"evt":"misconfigured"'), 10_000, "the misconfigured log line");
    const line = logs().split("\n").find((text) => text.includes('"evt":"misconfigured"'))!;
    const entry = JSON.parse(line.slice(line.indexOf("{")));
    expect(entry).toEqual({
      evt: "misconfigured",
      variables: "PING_INTERVAL_MS,AUTH_SECRET",
      problems: 'PING_INTERVAL_MS must be a number (got "abc"); AUTH_SECRET must be at least 32 characters',
    });
    expect(logs()).not.toContain(SHORT_SECRET);
  });

  it("answers the HTTP API, and health, with 500 server_misconfigured and no details", async () => {
    for (const [path, init] of [
      ["/api/pull-requests/1", {}],
      ["/api/pull-requests/1/messages", { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"message":"hi"}' }],
      ["/healthz", {}],
    ] as const) {
      const response = await fetch(`${worker.url}${path}`, init);
      expect(response.status, path).toBe(500);
      const body = await response.text();
      expect(JSON.parse(body), path).toEqual({ ok: false, error: { code: "server_misconfigured", message: "server misconfigured; see the logs" } });
      expect(body).not.toContain(SHORT_SECRET);
    }
  });
});
