#!/usr/bin/env node
/**
 * `npm run chaos -- --runs N --seed S`: the fault harness's long runs (test/chaos/).
 * The harness is TypeScript written for vitest's resolver (imports name `.js` for `.ts`), so
 * this bundles test/chaos/cli.ts with esbuild (packages stay external) and runs it.
 * Options: see test/chaos/cli.ts.
 */
import { build } from "esbuild";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
process.chdir(root);
// Inside the repository, so the bundle's bare imports resolve from its node_modules.
const outfile = join(root, "node_modules", ".cache", "pr-rooms-chaos", "cli.mjs");
mkdirSync(dirname(outfile), { recursive: true });
await build({
  entryPoints: [join(root, "test", "chaos", "cli.ts")],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  packages: "external",
  sourcemap: "inline",
  logLevel: "warning",
});
const { main } = await import(pathToFileURL(outfile).href);
process.exitCode = await main(process.argv.slice(2));
