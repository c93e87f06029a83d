/**
 * The deploy bundle exactly as `wrangler deploy` would upload it, built offline with
 * `wrangler deploy --dry-run`, with esbuild's metafile beside it. scripts/bundle.mjs (size
 * and budget) and scripts/cold-start.mjs (start-up CPU) both measure this one build.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const META = "bundle-meta.json";

/**
 * Builds into `outdir` (a fresh temporary directory when not given) and returns the
 * uploaded modules (everything but source maps, wrangler's README and the metafile) with
 * their sizes: gzip as wrangler computes its "Total Upload" figure (zlib's default level
 * over the modules together), so the two agree.
 */
export function buildDeployBundle(outdir = mkdtempSync(join(tmpdir(), "pr-rooms-bundle-"))) {
  // process.execPath: the Node running this script (Node 24 under npm/npx), which wrangler needs.
  const run = spawnSync(process.execPath, [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--outdir", outdir, "--metafile", join(outdir, META)], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
  });
  if (run.status !== 0) throw new Error(`wrangler deploy --dry-run failed (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
  const modules = readdirSync(outdir)
    .filter((name) => !name.endsWith(".map") && name !== "README.md" && name !== META)
    .map((name) => ({ name, content: readFileSync(join(outdir, name)) }));
  const all = Buffer.concat(modules.map((m) => m.content));
  return {
    outdir,
    main: join(outdir, "index.js"),
    modules,
    raw: all.byteLength,
    gzip: gzipSync(all).byteLength,
    metafile: JSON.parse(readFileSync(join(outdir, META), "utf8")),
  };
}

/** Bytes in the output per input file, from esbuild's metafile. */
export function inputsOf(metafile) {
  const main = Object.values(metafile.outputs).find((output) => output.entryPoint);
  return Object.entries(main?.inputs ?? {}).map(([path, { bytesInOutput }]) => ({ path, bytes: bytesInOutput }));
}

/**
 * Who an input belongs to: its package (zod by its folder, where the weight is: core,
 * classic, locales), or its folder of src/.
 */
export function groupOf(path) {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(path);
  if (pkg) {
    const [, name, rest] = pkg;
    if (name === "zod") return `zod/${rest.split("/").slice(0, rest.startsWith("v4/") ? 2 : 1).join("/").replace(/\.js$/, "")}`;
    return name;
  }
  const src = /^src\/([^/]+)\//.exec(path);
  return src ? `src/${src[1]}/` : path;
}
