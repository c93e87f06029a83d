/**
 * `npm start` checks the configuration before wrangler starts (scripts/check-config.mjs): a
 * bad var stops it before "Ready" with one line per problem naming the variable and the rule,
 * and never a secret's value. The check reads what wrangler dev reads (`[vars]`, then
 * `.dev.vars` beside the config, then `--var`), so these tests point it at a copy of
 * wrangler.toml in a temporary directory with a `.dev.vars` of their own.
 */
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../support/wrangler-dev.js";

const SCRIPT = resolve("scripts/check-config.mjs");
const SHORT_SECRET = "short-secret-do-not-print";
const GOOD_SECRET = "a-secret-that-is-long-enough-0123456789";

const dirs: string[] = [];
/** Process groups of `npm start`s still running (a test that timed out): stopped at the end. */
const running = new Set<number>();
afterAll(() => {
  for (const pgid of running) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // Gone already.
    }
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A temporary directory holding a copy of wrangler.toml and, when given, a `.dev.vars`. */
function configDir(devVars?: string): string {
  const dir = mkdtempSync(join(tmpdir(), "check-config-"));
  dirs.push(dir);
  copyFileSync("wrangler.toml", join(dir, "wrangler.toml"));
  if (devVars !== undefined) writeFileSync(join(dir, ".dev.vars"), devVars);
  return dir;
}

/** The process environment without anything that could hand wrangler vars of its own. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CLOUDFLARE_INCLUDE_PROCESS_ENV: "false" };
  delete env.AUTH_SECRET;
  return env;
}

function check(args: string[]) {
  const result = spawnSync(process.execPath, [SCRIPT, ...args], { env: cleanEnv(), encoding: "utf8", timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("scripts/check-config.mjs", () => {
  it("refuses a short AUTH_SECRET in .dev.vars with one line naming it and the rule, never the value", () => {
    const dir = configDir(`# local secrets\nAUTH_SECRET="${SHORT_SECRET}"\n`);
    const result = check(["-c", join(dir, "wrangler.toml")]);
    expect(result.status, result.stderr).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe("config: AUTH_SECRET must be at least 32 characters\n");
  });

  it("prints one line per problem, from .dev.vars and --var alike (--var wins, as in wrangler)", () => {
    const dir = configDir(`AUTH_SECRET=${SHORT_SECRET}\nPING_INTERVAL_MS=abc\nMAX_PAYLOAD_BYTES=2048\n`);
    const result = check(["--config", join(dir, "wrangler.toml"), "--port", "9000", "--var", "FAULT_INJECTION:maybe", "MAX_PAYLOAD_BYTES:10"]);
    expect(result.status).toBe(1);
    expect(result.stderr.trimEnd().split("\n")).toEqual([
      'config: PING_INTERVAL_MS must be a number (got "abc")',
      'config: MAX_PAYLOAD_BYTES must be at least 1024 (got "10")',
      "config: AUTH_SECRET must be at least 32 characters",
      'config: FAULT_INJECTION must be "on" or "off" (got "maybe")',
    ]);
    expect(result.stderr).not.toContain(SHORT_SECRET);
  });

  it("passes a good configuration silently", () => {
    const dir = configDir(`AUTH_SECRET=${GOOD_SECRET}\n`);
    const result = check(["-c", join(dir, "wrangler.toml"), "--var", `ALLOWED_ORIGINS:https://app.example.com`]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout + result.stderr).toBe("");
  });
});

/**
 * Runs `npm start -- ...args` in the repository until it exits or prints "Ready" (then it
 * is stopped, with everything it started). Resolves with its exit code (null if stopped) and output.
 */
async function npmStart(args: string[], timeoutMs = START_TIMEOUT_MS): Promise<{ code: number | null; ready: boolean; output: string }> {
  const child = spawn("npm", ["start", "--", ...args], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"], detached: true });
  running.add(child.pid!);
  child.once("exit", () => running.delete(child.pid!));
  let output = "";
  child.stdout.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr.on("data", (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const deadline = Date.now() + timeoutMs;
  while (child.exitCode === null && child.signalCode === null && !/\bReady\b/.test(output) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const ready = /\bReady\b/.test(output);
  if (child.exitCode === null && child.signalCode === null) {
    process.kill(-child.pid!, "SIGTERM");
    const stopped = await Promise.race([exited.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 5000))]);
    if (!stopped) process.kill(-child.pid!, "SIGKILL");
    return { code: null, ready, output };
  }
  return { code: await exited, ready, output };
}

/** wrangler dev is up in a few seconds; a loaded machine (two cores, other wranglers) takes longer. */
const START_TIMEOUT_MS = 60_000;

describe("npm start", () => {
  it("stops before wrangler says Ready when a var is bad, naming it", async () => {
    const port = await freePort();
    const { code, ready, output } = await npmStart(["--port", String(port), "--var", `AUTH_SECRET:${SHORT_SECRET}`]);
    expect(ready, output).toBe(false);
    expect(code, output).not.toBe(0);
    expect(code, output).not.toBe(null);
    expect(output).toContain("config: AUTH_SECRET must be at least 32 characters");
    // npm echoes the command line it was given ("> sh -c ... --var AUTH_SECRET:..."); nothing else may show the value.
    expect(output.split("\n").filter((line) => !line.startsWith("> "))).not.toContainEqual(expect.stringContaining(SHORT_SECRET));
    expect(output).not.toContain("wrangler 4");
  }, START_TIMEOUT_MS + 10_000);

  it("starts wrangler dev as before when the configuration is good, with the arguments given (--port)", async () => {
    const port = await freePort();
    const state = mkdtempSync(join(tmpdir(), "npm-start-state-"));
    dirs.push(state);
    const vars = ["--var", `AUTH_SECRET:${GOOD_SECRET}`, "--persist-to", state, "--inspector-port", String(await freePort())];
    const { ready, output } = await npmStart(["--port", String(port), "--show-interactive-dev-session=false", ...vars]);
    expect(ready, output).toBe(true);
    expect(output).toContain(`127.0.0.1:${port}`);
    expect(output).not.toContain("config:");
  }, START_TIMEOUT_MS + 10_000);
});
