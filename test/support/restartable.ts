/**
 * `wrangler dev` as a child process that a test can stop and start again on the same
 * port and the same local state (--persist-to), as an operator restarting the server would.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startWranglerDev, stopChild, varArgs } from "./wrangler-dev.js";

export interface RestartableWorker {
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops it for good and removes its state. */
  dispose(): Promise<void>;
}

export async function restartableWorker(vars: Record<string, string> = {}): Promise<RestartableWorker> {
  const port = await freePort();
  const state = mkdtempSync(join(tmpdir(), "pr-rooms-state-"));
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  const start = async () => {
    const started = await startWranglerDev("wrangler.toml", port, ["--persist-to", state, ...varArgs(vars)]);
    if (!started.ok) throw new Error(`${started.error}: ${started.output.slice(-2000)}`);
    child = started.child;
  };

  const stop = async () => {
    const current = child;
    child = undefined;
    if (current) await stopChild(current);
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
