#!/usr/bin/env node
/**
 * Builds the chat page's script: web/app.ts + socket.io-client (its browser build, from
 * node_modules; no CDN) bundled and minified into public/app.js, which Workers static
 * assets serve next to public/index.html.
 *
 * wrangler runs this as its [build] command before `wrangler dev`, `wrangler deploy`
 * and the test harness start. The file is written only when its bytes change, and by
 * rename, so test files starting wranglers side by side never see half a file.
 */
import { build } from "esbuild";
import { readFile, rename, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const outfile = `${root}public/app.js`;
const started = performance.now();
const client = JSON.parse(await readFile(`${root}node_modules/socket.io-client/package.json`, "utf8"));

const result = await build({
  absWorkingDir: root,
  entryPoints: ["web/app.ts"],
  outfile,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2020",
  minify: true,
  legalComments: "eof",
  banner: { js: `/*! Bundles socket.io-client ${client.version} (MIT License, https://github.com/socketio/socket.io) */` },
  write: false,
  logLevel: "warning",
});

const [output] = result.outputFiles;
const previous = await readFile(outfile).catch(() => null);
const changed = !previous || !Buffer.from(output.contents).equals(previous);
if (changed) {
  const temporary = `${outfile}.${process.pid}.tmp`;
  await writeFile(temporary, output.contents);
  await rename(temporary, outfile);
}
const kb = (output.contents.byteLength / 1024).toFixed(1);
console.log(`build-web: public/app.js ${kb} KiB${changed ? "" : " (unchanged)"} in ${Math.round(performance.now() - started)} ms`);
