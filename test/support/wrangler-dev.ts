/**
 * Runs `wrangler dev -c <config> --port N` as a child process, the way the README
 * tells a person to, and stops it afterwards.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { untilServing, type ServedWorker } from "./worker.js";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface WranglerDevOptions {
  /**
   * Keep Durable Object storage in a new temporary directory, removed on close, instead of
   * the project's `.wrangler/state`: rooms then start empty on every run, and files running
   * side by side never share a room's storage.
   */
  freshState?: boolean;
  /** Worker variables, each passed as `--var KEY:VALUE`. */
  vars?: Record<string, string>;
}

/** `--var KEY:VALUE` for each of `vars`. */
export const varArgs = (vars: Record<string, string> = {}): string[] =>
  Object.entries(vars).flatMap(([key, value]) => ["--var", `${key}:${value}`]);

export async function wranglerDev(configPath: string, options: WranglerDevOptions = {}): Promise<ServedWorker> {
  const state = options.freshState ? await mkdtemp(join(tmpdir(), "pr-rooms-state-")) : undefined;
  const extraArgs = [...varArgs(options.vars), ...(state ? ["--persist-to", state] : [])];
  const removeState = async () => {
    if (state) await rm(state, { recursive: true, force: true });
  };
  // A port found free can be taken before wrangler binds it (by another file's wrangler or
  // any outgoing connection: both draw from the same ephemeral range): then try fresh ports.
  for (let attempt = 1; ; attempt++) {
    const started = await startWranglerDev(configPath, await freePort(), extraArgs);
    if (started.ok) return served(started, removeState);
    if (attempt < START_ATTEMPTS && started.output.includes("Address already in use")) continue;
    await removeState();
    throw new Error(`${started.error}\n${started.output.slice(-3000)}`);
  }
}

const START_ATTEMPTS = 3;

type Started =
  | { ok: true; url: string; child: ChildProcess; output: () => string }
  | { ok: false; error: string; output: string };

/**
 * Runs `wrangler dev -c <configPath> --port <port> ...extraArgs` and waits until it serves.
 * If it does not, it is killed and the answer says why, with its output.
 */
export async function startWranglerDev(configPath: string, port: number, extraArgs: string[] = []): Promise<Started> {
  // Parallel test files each run a wrangler: give each its own devtools port too.
  const inspectorPort = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      "node_modules/wrangler/bin/wrangler.js", "dev", "-c", configPath,
      "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort),
      "--show-interactive-dev-session=false",
      ...extraArgs,
    ],
    {
      // X_LOCAL_OBSERVABILITY as the e2e project's env sets it too (vitest.config.ts), for any caller.
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", X_LOCAL_OBSERVABILITY: "false", CI: "true" },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    },
  );
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const url = `http://127.0.0.1:${port}`;
  try {
    await untilServing(url, 60_000, () => (child.exitCode !== null ? `wrangler dev exited ${child.exitCode}` : undefined));
  } catch (error) {
    if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
    return { ok: false, error: (error as Error).message, output };
  }
  return { ok: true, url, child, output: () => output };
}

/** Stops a wrangler started by startWranglerDev, and everything it started: SIGTERM, then SIGKILL after 5 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  process.kill(-child.pid!, "SIGTERM");
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
  if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
}

function served({ url, child, output }: Extract<Started, { ok: true }>, removeState: () => Promise<void>): ServedWorker {
  return {
    url,
    logs: output,
    close: async () => {
      await stopChild(child);
      await removeState();
    },
  };
}
