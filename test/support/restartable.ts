/**
 * `wrangler dev` as a child process that a test can stop and start again on the same
 * port and the same local state (--persist-to), as an operator restarting the server would.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./wrangler-dev.js";
import { untilServing } from "./worker.js";

export interface RestartableWorker {
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops it for good and removes its state. */
  dispose(): Promise<void>;
}

export async function restartableWorker(vars: Record<string, string> = {}): Promise<RestartableWorker> {
  const port = await freePort();
  const inspectorPort = await freePort();
  const state = mkdtempSync(join(tmpdir(), "pr-rooms-state-"));
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let output = "";

  const start = async () => {
    child = spawn(
      process.execPath,
      [
        "node_modules/wrangler/bin/wrangler.js", "dev", "-c", "wrangler.toml",
        "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort),
        "--persist-to", state, "--show-interactive-dev-session=false",
        ...Object.entries(vars).flatMap(([key, value]) => ["--var", `${key}:${value}`]),
      ],
      {
        env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", X_LOCAL_OBSERVABILITY: "false", CI: "true" },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      },
    );
    const current = child;
    current.stdout!.on("data", (chunk) => (output += chunk));
    current.stderr!.on("data", (chunk) => (output += chunk));
    await untilServing(url, 60_000, () => (current.exitCode !== null ? `wrangler dev exited ${current.exitCode}: ${output.slice(-2000)}` : undefined));
  };

  const stop = async () => {
    const current = child;
    child = undefined;
    if (!current || current.exitCode !== null) return;
    const exited = new Promise((resolve) => current.once("exit", resolve));
    process.kill(-current.pid!, "SIGTERM");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    if (current.exitCode === null) process.kill(-current.pid!, "SIGKILL");
  };

  await start();
  return {
    url,
    start,
    stop,
    dispose: async () => {
      await stop();
      rmSync(state, { recursive: true, force: true });
    },
  };
}
