/**
 * `npm run token` (scripts/token.mjs) as a person runs it: a child process. It mints a token
 * the Worker verifies, and refuses bad input with one line on stderr and exit code 2.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MAX_TOKEN_PULL_REQUESTS, SCOPE_WORDS, verifyToken } from "../../src/chat/identity.js";

const SCRIPT = resolve("scripts/token.mjs");
const SECRET = "token-script-secret-that-is-long-enough-0";
const settings = { AUTH_ISSUER: undefined, AUTH_AUDIENCE: undefined, CLOCK_SKEW_SECONDS: 0 };

/** A directory of its own to run in: no .dev.vars but the ones a test writes. */
const dirs: string[] = [];
function freshDir(devVars?: string): string {
  const dir = mkdtempSync(join(tmpdir(), "token-script-"));
  dirs.push(dir);
  if (devVars !== undefined) writeFileSync(join(dir, ".dev.vars"), devVars);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs the script with `args` in `cwd`, with AUTH_SECRET set to `secret` (unset when null). */
function run(args: string[], { secret = SECRET as string | null, cwd = freshDir() } = {}) {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.AUTH_SECRET;
  if (secret !== null) env.AUTH_SECRET = secret;
  const result = spawnSync(process.execPath, [SCRIPT, ...args], { cwd, env, encoding: "utf8", timeout: 20_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The claims of a token the script printed, verified as the Worker verifies them. */
async function claimsOf(stdout: string, secret = SECRET) {
  const verified = await verifyToken(stdout.trim(), secret, settings);
  if (!verified.ok) throw new Error(`${verified.code}: ${verified.message}`);
  const [, payload] = stdout.trim().split(".");
  return { identity: verified.identity, claims: JSON.parse(Buffer.from(payload!, "base64url").toString()) };
}

/** Expects the refusal: exit code 2, nothing on stdout, one line on stderr (no stack trace) matching `pattern`. */
function expectRefusal(result: ReturnType<typeof run>, pattern: RegExp) {
  expect(result.status, result.stderr).toBe(2);
  expect(result.stdout).toBe("");
  const lines = result.stderr.trimEnd().split("\n");
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^token: /);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\bat .*:\d+:\d+/);
}

describe("npm run token", () => {
  it("--help prints the usage and exits 0", () => {
    for (const flag of ["--help", "-h"]) {
      const result = run([flag], { secret: null });
      expect(result.status).toBe(0);
      expect(result.stderr).toBe("");
      expect(result.stdout).toMatch(/^usage: npm run token -- --user NAME/);
      expect(result.stdout).toContain("--ttl");
      expect(result.stdout).toContain("--scope");
    }
  });

  it("knows the scope words the Worker knows (src/chat/identity.ts), and its prs cap", () => {
    const { stdout } = run(["--help"]);
    expect(/scope words: (.*)$/m.exec(stdout)?.[1]).toBe(SCOPE_WORDS.join(", "));
    expect(stdout).toContain(`(up to ${MAX_TOKEN_PULL_REQUESTS})`);
  });

  it("mints a token the Worker verifies: sub, prs, scope, and exp the ttl after iat", async () => {
    const result = run(["--user", "johndoe", "--pr", "123", "--pr", "124", "--scope", "chat", "--scope", "publish read", "--ttl", "30m"]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toBe("");
    const { identity, claims } = await claimsOf(result.stdout);
    expect(identity).toMatchObject({ username: "johndoe", pullRequests: new Set(["123", "124"]), scopes: new Set(["chat", "publish", "read"]) });
    expect(claims).toMatchObject({ sub: "johndoe", prs: ["123", "124"], scope: "chat publish read" });
    expect(claims.exp - claims.iat).toBe(30 * 60);
  });

  it("without --scope, mints a token without a scope claim (a user's chat token), for 1h", async () => {
    const { claims, identity } = await claimsOf(run(["--user", "johndoe"]).stdout);
    expect(claims).not.toHaveProperty("scope");
    expect(claims).not.toHaveProperty("prs");
    expect(identity.scopes).toEqual(new Set(["chat"]));
    expect(claims.exp - claims.iat).toBe(3600);
  });

  it.each([["90s", 90], ["1m", 60], ["2h", 7200], ["7d", 604_800], ["365d", 31_536_000]])("takes --ttl %s", async (ttl, seconds) => {
    const { claims } = await claimsOf(run(["--user", "johndoe", "--ttl", ttl]).stdout);
    expect(claims.exp - claims.iat).toBe(seconds);
  });

  it.each(["", "abc", "0", "0s", "0d", "60", "-5m", "1.5h", "1w", "1 h", "1H", "366d", "9999999999s", "1e3s"])("refuses --ttl %j", (ttl) => {
    expectRefusal(run(["--user", "johndoe", `--ttl=${ttl}`]), /--ttl must be a whole number and a unit s, m, h or d, from 1s to 365d/);
  });

  it("takes the secret from --secret before AUTH_SECRET, and AUTH_SECRET before .dev.vars", async () => {
    const other = "another-secret-that-is-long-enough-000000";
    const devVars = `# local secrets\nAUTH_SECRET="${other}"\nOTHER=x\n`;
    await claimsOf(run(["--user", "a", "--secret", other]).stdout, other);
    await claimsOf(run(["--user", "a"], { cwd: freshDir(devVars) }).stdout, SECRET);
    await claimsOf(run(["--user", "a"], { secret: null, cwd: freshDir(devVars) }).stdout, other);
  });

  it("refuses without a secret, or with one shorter than 32 characters, never echoing it", () => {
    expectRefusal(run(["--user", "a"], { secret: null }), /no secret: set AUTH_SECRET/);
    for (const [args, secret, dir] of [
      [["--user", "a"], "short-secret-012345678901234567", freshDir()],
      [["--user", "a", "--secret", "short-secret-012345678901234567"], null, freshDir()],
      [["--user", "a"], null, freshDir("AUTH_SECRET=short-secret-012345678901234567\n")],
    ] as const) {
      const result = run([...args], { secret, cwd: dir });
      expectRefusal(result, /the secret is 31 characters; the Worker needs at least 32/);
      expect(result.stderr).not.toContain("short-secret");
    }
  });

  it.each([["admin"], ["constructor"], ["__proto__"], ["Publish"], ["chat moderator"]])("refuses the unknown scope word in --scope %j, naming it", (scope) => {
    const unknown = scope.split(" ").at(-1)!;
    expectRefusal(run(["--user", "ci-bot", "--scope", scope]), new RegExp(`unknown scope word "${unknown}"; scope words: chat, publish, read, moderate$`));
  });

  it("refuses --scope without a word", () => {
    expectRefusal(run(["--user", "ci-bot", "--scope", " "]), /--scope needs a word/);
  });

  it(`refuses more than ${MAX_TOKEN_PULL_REQUESTS} --pr, and a --pr that is not a pull request id`, async () => {
    const many = (count: number) => Array.from({ length: count }, (_, i) => ["--pr", String(i + 1)]).flat();
    expect((await claimsOf(run(["--user", "a", ...many(100)]).stdout)).identity.pullRequests?.size).toBe(100);
    expectRefusal(run(["--user", "a", ...many(101)]), /at most 100 --pr, not 101/);
    for (const pr of ["abc", "0", "-1", "1.5", "123456789012345678901"]) {
      expectRefusal(run(["--user", "a", `--pr=${pr}`]), /--pr must be a positive integer of at most 20 digits/);
    }
  });

  it("refuses a missing --user, an unknown option and a stray argument with one line", () => {
    expectRefusal(run([]), /--user NAME is required/);
    expectRefusal(run(["--user", " "]), /--user NAME is required/);
    expectRefusal(run(["--user", "a", "--usr", "b"]), /Unknown option '--usr'/);
    expectRefusal(run(["--user", "a", "extra"]), /Unexpected argument 'extra'/);
    expectRefusal(run(["--user", "a", "--ttl", "-5m"]), /--ttl.*ambiguous/);
  });
});
