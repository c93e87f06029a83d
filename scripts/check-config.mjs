#!/usr/bin/env node
/**
 * `npm start` runs this before `wrangler dev`, with the same arguments: it checks the vars
 * that wrangler dev would hand the Worker against the Worker's own schema (src/chat/config.ts,
 * bundled with esbuild: one copy of the rules), so a misconfiguration stops the start
 * before wrangler says Ready instead of failing the first request.
 *
 *   node scripts/check-config.mjs [wrangler dev arguments]
 *
 * The vars are read as wrangler dev reads them, with wrangler's own loader: `[vars]` of the
 * config (`-c/--config`, else the wrangler.toml wrangler finds; `[env.NAME.vars]` with
 * `-e/--env`), then `.dev.vars` beside the config (or, without one, the `.env` files and
 * `--env-file`s, and the process environment when CLOUDFLARE_INCLUDE_PROCESS_ENV=true),
 * then every `--var KEY:VALUE`. Other arguments are wrangler's business and ignored here.
 *
 * Prints nothing and exits 0 when the configuration is good. Otherwise prints one line per
 * problem on stderr, `config: AUTH_SECRET must be at least 32 characters`, and exits 1. It
 * never prints a secret's value.
 */
import { build } from "esbuild";
import module from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// wrangler's 15 MB bundle is most of this script's time: Node's compile cache (22.1+) cuts it by a third.
module.enableCompileCache?.();

/** The options of `wrangler dev` that decide its vars, as wrangler parses them (yargs: `--x=v` or `--x v`; arrays take every value up to the next option). */
function varOptions(argv) {
  const options = { config: undefined, env: undefined, envFiles: [], vars: {} };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].startsWith("--") && argv[i].includes("=") ? [argv[i].slice(0, argv[i].indexOf("=")), argv[i].slice(argv[i].indexOf("=") + 1)] : [argv[i], undefined];
    const values = () => {
      if (inline !== undefined) return [inline];
      const taken = [];
      while (i + 1 < argv.length && !argv[i + 1].startsWith("-")) taken.push(argv[++i]);
      return taken;
    };
    if (flag === "-c" || flag === "--config") options.config = values()[0];
    else if (flag === "-e" || flag === "--env") options.env = values()[0];
    else if (flag === "--env-file") options.envFiles.push(...values());
    else if (flag === "--var") {
      for (const pair of values()) {
        // As wrangler's collectKeyValues: the key up to the first colon, the value after it.
        const [key, ...value] = pair.split(":");
        options.vars[key] = value.join(":");
      }
    }
  }
  return options;
}

/** The vars wrangler dev would bind, by name (values as wrangler has them: strings, or JSON from the config). */
async function varsForDev(options) {
  const { unstable_readConfig, unstable_getVarsForDev } = await import("wrangler");
  const config = unstable_readConfig({ config: options.config, env: options.env }, { hideWarnings: true });
  const bindings = unstable_getVarsForDev(
    config.userConfigPath ?? config.configPath,
    options.envFiles.length > 0 ? options.envFiles : undefined,
    config.vars,
    options.env,
    true,
    config.secrets,
  );
  const vars = Object.fromEntries(Object.entries(bindings).map(([name, binding]) => [name, binding.value]));
  return { ...vars, ...options.vars };
}

/** src/chat/config.ts, bundled (zod with it) and loaded from memory: nothing is written. */
async function configModule() {
  const bundle = await build({
    entryPoints: [join(root, "src", "chat", "config.ts")],
    bundle: true,
    write: false,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
  });
  return import(`data:text/javascript;base64,${Buffer.from(bundle.outputFiles[0].text).toString("base64")}`);
}

const options = varOptions(process.argv.slice(2));
let vars;
let schema;
try {
  [vars, schema] = await Promise.all([varsForDev(options), configModule()]);
} catch (error) {
  // A config wrangler cannot read: wrangler would refuse it too, so say why in one line.
  console.error(`config: ${String(error?.message ?? error).split("\n").find((line) => line.trim() !== "") ?? "cannot be read"}`);
  process.exit(1);
}
const problems = schema.configProblems(vars);
for (const problem of problems) console.error(`config: ${schema.describeProblem(problem)}`);
process.exitCode = problems.length > 0 ? 1 : 0;
