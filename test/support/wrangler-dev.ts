/**
 * Runs `wrangler dev -c <config> --port N` as a child process, the way the README
 * tells a person to, and stops it afterwards.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
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

export async function wranglerDev(configPath: string, extraArgs: string[] = []): Promise<ServedWorker> {
  const port = await freePort();
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
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "true" },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    },
  );
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const url = `http://127.0.0.1:${port}`;
  await untilServing(url, 60_000, () =>
    child.exitCode !== null ? `wrangler dev exited ${child.exitCode}` : undefined,
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n${output.slice(-3000)}`);
  });
  return {
    url,
    logs: () => output,
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      process.kill(-child.pid!, "SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
    },
  };
}
