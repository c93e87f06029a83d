#!/usr/bin/env node
/**
 * Cold start: the CPU the deploy bundle spends before a client gets its first frame (the
 * Engine.IO open packet), in the Worker and in a room (and before the HTTP API's first
 * answer), measured in workerd as wrangler runs it (wrangler's own Miniflare), on this machine.
 *
 *   node scripts/cold-start.mjs [--runs 7] [--bundle a/index.js [--bundle b/index.js ...]]
 *
 * Without --bundle it builds this tree's deploy bundle (scripts/lib/deploy-bundle.mjs).
 * With several, it measures them in turn, run after run, so that a machine that gets
 * busier or quieter meanwhile weighs on each alike: compare bundles this way, not from
 * two invocations; the last columns give each one's change against the first, run by run.
 *
 * Each run starts a fresh workerd per path (gateway, direct, API). Its main module is a
 * small harness, not the bundle, so that module evaluation happens inside a request, where
 * it can be measured:
 *   1. `/__noop` three times: the harness's own cost per request (Miniflare's entry worker
 *      and the harness), the floor under every figure below;
 *   2. `/__import`: imports the bundle; minus the floor, that is module evaluation (parse,
 *      compile, and everything the modules do at their top level: zod schemas, Hono apps);
 *   3. WebSocket handshakes, each measured until its first frame arrives:
 *      gateway path: the first (every code path cold), then three more (warm);
 *      direct path (`?pullRequestId=`, in another fresh workerd): the first (a new room in
 *      a cold isolate: the Worker's routing hop, the room's constructor and first fetch),
 *      another new room (constructor and first fetch, code warm), the same room again;
 *   4. the HTTP API (a third fresh workerd): its first request, then another.
 * The harness forwards fetches to the bundle's default export, and its Durable Object
 * classes construct the bundle's, so the bundle runs unchanged.
 *
 * CPU is the workerd process's, from /proc/<pid>/task/<tid>/schedstat (nanoseconds on CPU,
 * summed over its threads), read just before a request and as its answer (or first frame)
 * arrives: everything workerd did meanwhile, the harness floor included. Figures are the
 * median over the runs, min–max beside. Linux only.
 *
 * Production differs: Cloudflare's machines are faster or slower, a room's object usually
 * starts in an isolate of its own (so it pays module evaluation too, as the totals assume),
 * and an existing room's tables already exist. Compare figures from the same machine.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { buildDeployBundle, ROOT } from "./lib/deploy-bundle.mjs";

const { values: options } = parseArgs({ options: { runs: { type: "string", default: "7" }, bundle: { type: "string", multiple: true } } });
const runs = Number(options.runs);

// The Miniflare that wrangler itself runs (its own dependency, so the same workerd as `wrangler dev`).
const wranglerRequire = createRequire(createRequire(import.meta.url).resolve("wrangler/package.json"));
const { Miniflare, convertV4MiniflareOptions } = await import(pathToFileURL(wranglerRequire.resolve("miniflare")).href);

const bundles = (options.bundle ?? [buildDeployBundle().main]).map((path) => ({ path, code: readFileSync(path, "utf8"), samples: {} }));
const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
delete workerOptions.assets; // static assets are not the Worker: requests go straight to it
const classes = Object.values(workerOptions.durableObjects ?? {}).map((binding) => (typeof binding === "string" ? binding : binding.className));

const harness = `
import { DurableObject } from "cloudflare:workers";
let bundle;
// An object of the harness's class is the bundle's: the constructor returns the bundle's own.
const construct = (name) => class extends DurableObject {
  constructor(ctx, env) { super(ctx, env); return new bundle[name](ctx, env); }
};
${classes.map((name) => `export const ${name} = construct(${JSON.stringify(name)});`).join("\n")}
export default {
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    if (pathname === "/__noop") return new Response("ok");
    if (pathname === "/__import") { bundle = await import("./index.js"); return new Response("ok"); }
    return bundle.default.fetch(request, env, ctx);
  },
};`;

/** Nanoseconds the process has spent on CPU, all threads (one that exited meanwhile is lost; workerd's live on). */
function cpuNs(pid) {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns;
}

/** The workerd that Miniflare started: our child process. */
function workerdPid() {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // Not a previous run's workerd on its way out (a zombie).
      if (Number(ppid) === process.pid && state !== "Z" && stat.includes("(workerd)")) return Number(name);
    } catch {
      // gone
    }
  }
  throw new Error("cold-start: no workerd child process found");
}

/** A fresh workerd running the harness over `code`; `body` gets `cpuMs(request)`, the CPU (ms) a request costs it. */
async function withWorkerd(code, body) {
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      ...workerOptions,
      modulesRoot: "/",
      modules: [
        { type: "ESModule", path: "/harness.js", contents: harness },
        { type: "ESModule", path: "/index.js", contents: code },
      ],
      host: "127.0.0.1",
      port: 0,
      handleStructuredLogs: () => {}, // the bundle's JSON log lines are not this script's output
    }),
  );
  try {
    const url = await mf.ready;
    const pid = workerdPid();
    return await body(async (request) => {
      const before = cpuNs(pid);
      await request(url);
      return (cpuNs(pid) - before) / 1e6;
    });
  } finally {
    await mf.dispose();
  }
}

const get = (path, status = 200) => async (url) => {
  const response = await fetch(new URL(path, url));
  if (response.status !== status) throw new Error(`cold-start: GET ${path} answered ${response.status}, not ${status}`);
  await response.text();
};

/** Opens a WebSocket and resolves at its first frame, which must be an Engine.IO open packet. */
const firstFrame = (query) => (url) =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(new URL(`/socket.io/?EIO=4&transport=websocket${query}`, url.href.replace(/^http/, "ws")));
    ws.onmessage = (event) => {
      ws.close();
      if (String(event.data).startsWith("0{")) resolve();
      else reject(new Error(`cold-start: first frame ${String(event.data).slice(0, 80)}`));
    };
    ws.onerror = () => reject(new Error(`cold-start: WebSocket ${query || "(gateway)"} failed`));
  });

/** The harness floor, then module evaluation less it. */
async function startUp(cpuMs) {
  const noop = [];
  for (let i = 0; i < 3; i++) noop.push(await cpuMs(get("/__noop")));
  const floor = noop[2]; // the first ones warm Miniflare's own path
  return { floor, module: (await cpuMs(get("/__import"))) - floor };
}

async function measure({ code, samples }) {
  const add = (name, ms) => (samples[name] ??= []).push(ms);
  await withWorkerd(code, async (cpuMs) => {
    const { floor, module } = await startUp(cpuMs);
    add("floor", floor);
    add("module", module);
    const first = await cpuMs(firstFrame(""));
    add("gateway first", first);
    add("worker total", module + first);
    const warm = [];
    for (let i = 0; i < 3; i++) warm.push(await cpuMs(firstFrame("")));
    add("gateway warm", median(warm));
  });
  await withWorkerd(code, async (cpuMs) => {
    const { module } = await startUp(cpuMs);
    add("module", module);
    const first = await cpuMs(firstFrame("&pullRequestId=1"));
    add("direct first", first);
    add("room total", module + first);
    add("direct new room", await cpuMs(firstFrame("&pullRequestId=2")));
    add("direct warm", await cpuMs(firstFrame("&pullRequestId=2")));
  });
  await withWorkerd(code, async (cpuMs) => {
    const { module } = await startUp(cpuMs);
    add("module", module);
    // Without AUTH_SECRET the API refuses (501) after routing, in the API app: enough to build it.
    const first = await cpuMs(get("/api/pull-requests/1", 501));
    add("api first", first);
    add("api total", module + first);
    add("api warm", await cpuMs(get("/api/pull-requests/1", 501)));
  });
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

for (let run = 1; run <= runs; run++) {
  for (const bundle of bundles) await measure(bundle);
  process.stderr.write(`cold-start: run ${run}/${runs}\n`);
}

const ROWS = [
  ["floor", "harness floor per request", "Miniflare's own path, inside every figure below"],
  ["module", "module evaluation", "importing the bundle, less the floor"],
  ["gateway first", "gateway: first frame, cold", "the Worker's first WebSocket, to the open packet"],
  ["gateway warm", "gateway: first frame, warm", "the same, once warm"],
  ["direct first", "direct: first frame, cold", "a new room in a cold isolate: routing hop, constructor, first fetch"],
  ["direct new room", "direct: first frame, new room", "another new room, code warm"],
  ["direct warm", "direct: first frame, warm", "the same room again"],
  ["api first", "API: first request, cold", "GET /api/pull-requests/1 (501 without AUTH_SECRET)"],
  ["api warm", "API: request, warm", "the same again"],
  ["worker total", "Worker, before its first frame", "module evaluation + gateway first frame, cold"],
  ["room total", "room, before its first frame", "module evaluation + direct first frame, cold"],
  ["api total", "API, before its first answer", "module evaluation + first API request, cold"],
];
const cell = (values) => `${median(values).toFixed(1)} (${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)})`.padEnd(20);
// Against [1], run by run: the median of the paired differences, steadier than a difference of medians.
const delta = (values, first) => {
  const change = median(values.map((ms, i) => ms - first[i]));
  return `${change >= 0 ? "+" : ""}${change.toFixed(1)} (${((change / median(first)) * 100).toFixed(0)}%)`.padEnd(14);
};

console.log(`cold start: workerd CPU in ms, median of ${runs} fresh processes (min–max)`);
bundles.forEach(({ path, code }, i) => console.log(`  [${i + 1}] ${path} (${(code.length / 1024).toFixed(0)} KiB)`));
const others = bundles.slice(1);
console.log(`  ${"".padEnd(31)} ${bundles.map((_, i) => `[${i + 1}]`.padEnd(20)).join(" ")} ${others.map((_, i) => `[${i + 2}] vs [1]`.padEnd(14)).join(" ")}`);
for (const [key, label, note] of ROWS) {
  const first = bundles[0].samples[key];
  console.log(`  ${label.padEnd(31)} ${bundles.map(({ samples }) => cell(samples[key])).join(" ")} ${others.map(({ samples }) => delta(samples[key], first)).join(" ")} ${note}`);
}
