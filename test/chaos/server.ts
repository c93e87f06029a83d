/**
 * The Worker under `wrangler dev` for the chaos harness: restartable on the same port and the
 * same state (`--persist-to`), as test/support/restartable.ts, plus what a chaos run needs on
 * top: everything wrangler printed (for diagnosing a failure) and, by default, a snapshot of
 * the source tree taken when the server is first started.
 *
 * Why a snapshot: wrangler dev rebuilds and reloads the Worker whenever a file under src/
 * changes ([build] watch_dir), which drops every socket like a deploy. Other people edit src/
 * while the harness runs; a schedule must not be hit by a reload nobody asked for, and a
 * failing seed must be tied to one version of the code. `live: true` serves the tree itself.
 */
import type { ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, startWranglerDev, stopChild, varArgs } from "../support/wrangler-dev.js";

export interface ChaosServer {
  /** http://127.0.0.1:PORT (never anything but loopback). */
  readonly url: string;
  /** Whether it is serving now (false between stop() and start()). */
  readonly running: boolean;
  /** How many times it was started. */
  readonly starts: number;
  /** The vars it was started with. */
  readonly vars: Readonly<Record<string, string>>;
  /** The tree it serves (a snapshot unless live). */
  readonly root: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Everything wrangler printed, over every start, each start headed by a line. */
  logs(): string;
  /** Stops it for good and removes its state. */
  dispose(): Promise<void>;
}

/** What of the repository wrangler needs to build and serve the Worker. */
const SNAPSHOT_ENTRIES = ["src", "web", "public", "scripts", "wrangler.toml", "package.json", "tsconfig.json", "worker-configuration.d.ts"];

export function snapshotTree(repo = resolve(".")): string {
  const root = mkdtempSync(join(tmpdir(), "pr-rooms-chaos-src-"));
  for (const entry of SNAPSHOT_ENTRIES) cpSync(join(repo, entry), join(root, entry), { recursive: true });
  symlinkSync(join(repo, "node_modules"), join(root, "node_modules"), "dir");
  return root;
}

/** `root`: the tree to serve (a snapshot from snapshotTree(), or the repository itself); the caller owns it. */
export async function chaosServer(vars: Record<string, string>, root: string): Promise<ChaosServer> {
  const state = mkdtempSync(join(tmpdir(), "pr-rooms-chaos-state-"));
  let port = await freePort();
  let url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let output: (() => string) | undefined;
  let earlier = "";
  let starts = 0;

  const start = async () => {
    if (child) return;
    // The first start may find its port taken (ports are drawn from the same range as everything else): try fresh ones then.
    for (let attempt = 1; ; attempt++) {
      const started = await startWranglerDev(join(root, "wrangler.toml"), port, ["--persist-to", state, ...varArgs(vars)]);
      if (started.ok) {
        child = started.child;
        output = started.output;
        starts++;
        earlier += `\n===== wrangler start #${starts} at ${new Date().toISOString()} =====\n`;
        return;
      }
      if (starts === 0 && attempt < 3 && started.output.includes("Address already in use")) {
        port = await freePort();
        url = `http://127.0.0.1:${port}`;
        continue;
      }
      throw new Error(`wrangler dev did not start: ${started.error}\n${started.output.slice(-3000)}`);
    }
  };

  const stop = async () => {
    const current = child;
    child = undefined;
    if (output) earlier += output();
    output = undefined;
    if (current) await stopChild(current);
  };

  await start();
  return {
    get url() {
      return url;
    },
    get running() {
      return child !== undefined;
    },
    get starts() {
      return starts;
    },
    vars,
    root,
    start,
    stop,
    logs: () => earlier + (output ? output() : ""),
    dispose: async () => {
      await stop();
      rmSync(state, { recursive: true, force: true });
    },
  };
}

/** Writes the server's log to a file for a failure report; returns its path. */
export function saveLogs(server: ChaosServer, name: string): string {
  const path = join(tmpdir(), `${name}.wrangler.log`);
  writeFileSync(path, server.logs());
  return path;
}
