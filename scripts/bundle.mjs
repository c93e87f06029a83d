#!/usr/bin/env node
/**
 * Builds the deploy bundle (`wrangler deploy --dry-run`, offline), prints its raw and gzip
 * size and what makes it up, and exits 1 when the gzip size is over the budget below. CI
 * runs it (.ci/run) so that a dependency or an import that swells the bundle fails the
 * build with its name on the list instead of slipping into a deploy.
 *
 *   node scripts/bundle.mjs [--outdir DIR] [--top N]
 *
 * Run it with the project's Node 24 (`npm run bundle`, `npx node scripts/bundle.mjs`):
 * wrangler needs it. The bundle stays in DIR (default: a new temporary directory).
 */
import { parseArgs } from "node:util";
import { buildDeployBundle, groupOf, inputsOf } from "./lib/deploy-bundle.mjs";

/**
 * The gzip budget, in KiB. The bundle was 230 KiB gzip when this was set, 63% of its raw
 * bytes zod (locales, JSON Schema and compiler included: src/chat/config.ts and
 * @hono/zod-openapi use the whole `z` namespace, which esbuild cannot shake). The headroom,
 * about 4%, is for the code's ordinary growth; a second copy of zod, a polyfill or a new
 * library of any weight goes over. Raise it on purpose, in the change that needs it, saying why.
 */
const GZIP_BUDGET_KIB = 240;

const { values: options } = parseArgs({ options: { outdir: { type: "string" }, top: { type: "string", default: "12" } } });
const top = Number(options.top);
const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

const bundle = buildDeployBundle(options.outdir);
console.log(`bundle: ${bundle.modules.map((m) => m.name).join(", ")} in ${bundle.outdir}: ${kib(bundle.raw)} raw, ${kib(bundle.gzip)} gzip (budget ${GZIP_BUDGET_KIB} KiB gzip)`);

const inputs = inputsOf(bundle.metafile);
const total = inputs.reduce((sum, input) => sum + input.bytes, 0);
const groups = new Map();
for (const { path, bytes } of inputs) groups.set(groupOf(path), (groups.get(groupOf(path)) ?? 0) + bytes);
const row = (bytes, name) => `  ${kib(bytes).padStart(10)} ${`${((bytes / total) * 100).toFixed(1)}%`.padStart(6)}  ${name}`;
console.log(`biggest contributors (bytes in the output, before gzip), by package or src/ folder:`);
for (const [name, bytes] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(row(bytes, name));
console.log(`biggest files:`);
for (const { path, bytes } of [...inputs].sort((a, b) => b.bytes - a.bytes).slice(0, top)) console.log(row(bytes, path));

if (bundle.gzip > GZIP_BUDGET_KIB * 1024) {
  console.error(`bundle: ${kib(bundle.gzip)} gzip is over the budget of ${GZIP_BUDGET_KIB} KiB (GZIP_BUDGET_KIB in scripts/bundle.mjs); the lists above say what grew`);
  process.exit(1);
}
