import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/**
 * Four projects: `workers` runs inside workerd through the Workers Vitest integration
 * (codec, gateway, rooms), and `history` the same with history on; `e2e` runs in Node and
 * drives the real socket.io-client (and Chromium) against the Worker served by wrangler
 * (and checks the tree's layering, test/tools); `chaos` runs the fault harness.
 */

/** A project inside workerd, with short timers so heartbeat and expiry tests take a second, not a minute. */
function workerd(name: string, include: string[], vars: Record<string, string> = {}) {
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            PING_INTERVAL_MS: "300",
            PING_TIMEOUT_MS: "200",
            DIRECT_PING_INTERVAL_MS: "300",
            CONNECT_TIMEOUT_MS: "1000",
            TYPING_TIMEOUT_MS: "1500",
            JOIN_GRACE_MS: "200",
            PRESENCE_GRACE_MS: "300",
            RECOVERY_WINDOW_MS: "3000",
            RECOVERY_MAX_MESSAGES: "40",
            MAX_REPLAY_BYTES: "16384",
            FAULT_INJECTION: "on",
            ...vars,
          },
        },
      }),
    ],
    test: {
      name,
      // Runs before the wrangler-served tests, so the two never compete for the two cores.
      sequence: { groupOrder: 0 },
      include,
      setupFiles: ["test/worker/settle.ts"],
    },
  };
}

export default defineConfig({
  test: {
    projects: [
      workerd("workers", ["test/protocol/**/*.test.ts", "test/worker/**/*.test.ts"]),
      // The same inside workerd with history on (the default keeps none, as the API document has it).
      workerd("history", ["test/history/**/*.test.ts"], { HISTORY_RETENTION_DAYS: "7" }),
      {
        test: {
          name: "e2e",
          sequence: { groupOrder: 1 },
          environment: "node",
          include: ["test/e2e/**/*.test.ts", "test/conformance/**/*.test.ts", "test/browser/**/*.test.ts", "test/tools/**/*.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
          // Each file starts its own wrangler; two cores run two at most.
          maxWorkers: 2,
          // Offline, quiet, and without local observability tracing every message (see BENCHMARKS.md).
          env: { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", X_LOCAL_OBSERVABILITY: "false" },
        },
      },
      {
        test: {
          // The fault harness (test/chaos): random fault schedules against its own wrangler,
          // after the e2e files so it does not compete with them for the two cores.
          name: "chaos",
          sequence: { groupOrder: 2 },
          environment: "node",
          include: ["test/chaos/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 60_000,
          maxWorkers: 1,
          env: { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", X_LOCAL_OBSERVABILITY: "false" },
        },
      },
    ],
  },
});
