/**
 * The official socket.io protocol test suite, vendored unmodified in vendor/socket.io-protocol
 * (see its NOTICE), run against the conformance fixture (test/fixtures/conformance): 32 tests: Engine.IO over both transports and the upgrade, then Socket.IO over WebSocket. The fixture is served by `wrangler dev`, as the
 * README tells a person to run it; vendor/harness.js points the suite's hard-coded
 * http://localhost:3000 at it. Nothing is fetched at test time.
 */
import { afterAll, beforeAll } from "vitest";
import { wranglerDev } from "../support/wrangler-dev.js";
import type { ServedWorker } from "../support/worker.js";

let fixture: ServedWorker | undefined;

beforeAll(async () => {
  fixture = await wranglerDev("test/fixtures/conformance/wrangler.toml");
  (globalThis as { PROTOCOL_SUITE_URL?: string }).PROTOCOL_SUITE_URL = fixture.url;
});

afterAll(async () => {
  await fixture?.close();
});

// Registers the suite's describe/it blocks in this file (a path in a variable: the file is plain JS without types).
const suite = "./vendor/socket.io-protocol/test-suite.js";
await import(suite);
