/**
 * The official engine.io protocol test suite, vendored unmodified in vendor/engine.io-protocol
 * (see its NOTICE), run against the Engine.IO echo fixture (test/fixtures/echo): 24 tests: handshake, messages, heartbeat, close and the upgrade, over HTTP long-polling and WebSocket. The fixture is served by `wrangler dev`, as the
 * README tells a person to run it; vendor/harness.js points the suite's hard-coded
 * http://localhost:3000 at it. Nothing is fetched at test time.
 */
import { afterAll, beforeAll } from "vitest";
import { wranglerDev } from "../support/wrangler-dev.js";
import type { ServedWorker } from "../support/worker.js";

let fixture: ServedWorker | undefined;

beforeAll(async () => {
  fixture = await wranglerDev("test/fixtures/echo/wrangler.toml");
  (globalThis as { PROTOCOL_SUITE_URL?: string }).PROTOCOL_SUITE_URL = fixture.url;
});

afterAll(async () => {
  await fixture?.close();
});

// Registers the suite's describe/it blocks in this file (a path in a variable: the file is plain JS without types).
const suite = "./vendor/engine.io-protocol/test-suite.js";
await import(suite);
