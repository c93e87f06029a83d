#!/usr/bin/env node
/**
 * Extracts the test vectors of socket.io-parser and engine.io-parser into data that
 * test/protocol/parser-vectors.test.ts replays against our codec (src/protocol/).
 *
 *   node scripts/extract-parser-vectors.mjs --repo <clone of github.com/socketio/socket.io> [--check]
 *       [--sio-commit <sha>] [--eio-commit <sha>]
 *
 * How: the upstream test files are read from the given commits (`git show`, nothing is
 * checked out), bundled with esbuild, and run under a tiny mocha/expect.js stand-in
 * against the parsers installed in node_modules, each wrapped so that every call the
 * tests make (Encoder#encode, Decoder#add and its "decoded" events, isPacketValid,
 * encodePacket, decodePacket, encodePayload, decodePayload, and the WebTransport
 * stream factories) is recorded with its inputs and what the real parser answered
 * (output or error message). Every upstream test must pass, or nothing is written:
 * a vector is only what upstream asserts about upstream's own parser.
 *
 * Output: test/protocol/vectors/<package>/vectors.ts (generated, do not edit). The
 * upstream test files themselves are not copied into this repository. `--check`
 * regenerates in memory and exits 1 if the committed files differ (for CI, or after
 * bumping socket.io / socket.io-client).
 *
 * engine.io-parser runs twice, as upstream does: test/index.ts (which imports
 * test/node.ts) against the Node build, and test/browser.ts against the browser build
 * (package.json "browser" field, bundled for the browser platform, with a FileReader
 * stand-in since Node has none). socket.io-parser runs test/index.js once (Node).
 *
 * The default commits are the ones matching the installed npm versions; see
 * test/protocol/vectors/<package>/README.md. Commit 7cd215d1 sits on a pull-request ref; a
 * plain clone fetches it with `git fetch origin 7cd215d100b73a47725a93a723acf9c7b65df174`.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as esbuild from "esbuild";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const OUT_DIR = join(ROOT, "test/protocol/vectors");

const { values: args } = parseArgs({
  options: {
    repo: { type: "string" },
    "sio-commit": { type: "string", default: "7cd215d100b73a47725a93a723acf9c7b65df174" },
    "eio-commit": { type: "string", default: "f00fc89b077cbeff9b432960dde4f0122a848091" },
    check: { type: "boolean", default: false },
  },
});
if (!args.repo) {
  console.error("usage: node scripts/extract-parser-vectors.mjs --repo <socketio/socket.io clone> [--check]");
  process.exit(2);
}

// ---------------------------------------------------------------- snapshots

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** The bytes of an ArrayBuffer or of a view on one (only the view's own range). */
const bytesOf = (value) => (value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength));

/**
 * Turns a value into JSON data that test/protocol/vectors/revive.ts turns back into
 * an equivalent value: binary as hex, cycles as JSON-pointer references, objects with
 * toJSON() with both their own properties and their toJSON() result.
 */
function snap(value, path = "", seen = new Map()) {
  if (value === undefined) return { $undefined: true };
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : { $number: String(value) };
  if (typeof value === "function") return { $function: value.name || "anonymous" };
  if (typeof value !== "object") throw new Error(`cannot snapshot a ${typeof value}`);
  if (seen.has(value)) return { $ref: seen.get(value) };
  if (value instanceof ArrayBuffer) return { $binary: "ArrayBuffer", hex: hex(bytesOf(value)) };
  if (ArrayBuffer.isView(value)) {
    const kind = Buffer.isBuffer(value) ? "Buffer" : value.constructor.name;
    const out = { $binary: kind, hex: hex(bytesOf(value)) };
    // Where a view sits in its buffer (not for Buffers: Node slices small ones from a shared pool).
    if (kind !== "Buffer" && (value.byteOffset !== 0 || value.byteLength !== value.buffer.byteLength)) {
      Object.assign(out, { byteOffset: value.byteOffset, bufferLength: value.buffer.byteLength });
    }
    return out;
  }
  if (typeof Blob === "function" && value instanceof Blob) {
    // A Blob's bytes can only be read asynchronously: filled in before the test's record is kept.
    const out = { $binary: "Blob", type: value.type, hex: "" };
    recorder.pending.push(value.arrayBuffer().then((bytes) => (out.hex = hex(new Uint8Array(bytes)))));
    return out;
  }
  if (value instanceof Date) return { $date: value.toISOString() };
  if (value instanceof Error) return { $error: value.message };
  seen.set(value, path);
  if (Array.isArray(value)) return value.map((item, i) => snap(item, `${path}/${i}`, seen));
  const own = {};
  for (const key of Object.keys(value)) own[key] = snap(value[key], `${path}/${key}`, seen);
  if (typeof value.toJSON === "function") return { $toJSON: snap(value.toJSON(), `${path}/$toJSON`, new Map()), own };
  if (Object.getPrototypeOf(value) === null) return { $nullPrototype: own };
  if (Object.getPrototypeOf(value) !== Object.prototype) return { $class: value.constructor?.name ?? "?", own };
  return Object.keys(own).some((key) => key.startsWith("$")) ? { $object: own } : own;
}

// ---------------------------------------------------------------- recorder

const recorder = {
  current: undefined,
  pending: [],
  decoders: 0,
  op(entry) {
    if (!this.current) throw new Error(`parser call outside a test: ${JSON.stringify(entry).slice(0, 200)}`);
    this.current.ops.push(entry);
    return entry;
  },
  snap: (value) => snap(value),
};
globalThis.__vectorRecorder = recorder;

const RECORDERS = {
  "socket.io-parser": `
    import * as real from "socket.io-parser";
    const rec = globalThis.__vectorRecorder;
    export const { PacketType, protocol } = real;
    export class Encoder extends real.Encoder {
      encode(packet) {
        const entry = { op: "encode", packet: rec.snap(packet) };
        try {
          const out = super.encode(packet);
          entry.out = rec.snap(out);
          return out;
        } catch (error) {
          entry.throws = String(error && error.message);
          throw error;
        } finally {
          rec.op(entry);
        }
      }
    }
    export class Decoder extends real.Decoder {
      constructor(opts) {
        super(opts);
        this.vectorId = ++rec.decoders;
        rec.op(opts === undefined ? { op: "decoder", decoder: this.vectorId } : { op: "decoder", decoder: this.vectorId, opts: rec.snap(opts) });
        // Registered first, so the packet is recorded before any test listener sees it.
        super.on("decoded", (packet) => rec.op({ op: "decoded", decoder: this.vectorId, packet: rec.snap(packet) }));
      }
      add(chunk) {
        const entry = rec.op({ op: "add", decoder: this.vectorId, chunk: rec.snap(chunk) });
        try {
          return super.add(chunk);
        } catch (error) {
          entry.throws = String(error && error.message);
          throw error;
        }
      }
      destroy() {
        rec.op({ op: "destroy", decoder: this.vectorId });
        return super.destroy();
      }
    }
    export function isPacketValid(packet) {
      const result = real.isPacketValid(packet);
      rec.op({ op: "isPacketValid", packet: rec.snap(packet), result });
      return result;
    }
    rec.meta = { protocol: real.protocol, PacketType: Object.fromEntries(Object.entries(real.PacketType).filter(([k]) => isNaN(Number(k)))) };
  `,
  "engine.io-parser": `
    import * as real from "engine.io-parser";
    const rec = globalThis.__vectorRecorder;
    export const { protocol } = real;
    export function encodePacket(packet, supportsBinary, callback) {
      const entry = rec.op({ op: "encodePacket", packet: rec.snap(packet), supportsBinary });
      return real.encodePacket(packet, supportsBinary, (out) => { entry.out = rec.snap(out); callback(out); });
    }
    export function decodePacket(data, binaryType) {
      const entry = rec.op({ op: "decodePacket", data: rec.snap(data), binaryType: rec.snap(binaryType) });
      const out = real.decodePacket(data, binaryType);
      entry.out = rec.snap(out);
      return out;
    }
    export function encodePayload(packets, callback) {
      const entry = rec.op({ op: "encodePayload", packets: rec.snap(packets) });
      return real.encodePayload(packets, (out) => { entry.out = out; callback(out); });
    }
    export function decodePayload(payload, binaryType) {
      const entry = rec.op({ op: "decodePayload", payload, binaryType: rec.snap(binaryType) });
      const out = real.decodePayload(payload, binaryType);
      entry.out = rec.snap(out);
      return out;
    }
    // WebTransport framing: only that it is used is recorded (the data can be 100 MB).
    export function createPacketEncoderStream(...args) {
      rec.op({ op: "stream", kind: "createPacketEncoderStream" });
      return real.createPacketEncoderStream(...args);
    }
    export function createPacketDecoderStream(...args) {
      rec.op({ op: "stream", kind: "createPacketDecoderStream" });
      return real.createPacketDecoderStream(...args);
    }
    rec.meta = { protocol: real.protocol };
  `,
};

// ---------------------------------------------------------------- expect.js stand-in

/** expect.js 0.3.1 semantics for what the parser tests use; eql compares binary by bytes. */
function eql(a, b) {
  if (a === b) return true;
  const bin = (v) => v instanceof ArrayBuffer || ArrayBuffer.isView(v);
  if (bin(a) && bin(b)) {
    const x = bytesOf(a);
    const y = bytesOf(b);
    return x.length === y.length && x.every((v, i) => v === y[i]);
  }
  if (typeof Blob === "function" && a instanceof Blob && b instanceof Blob) return a.size === b.size; // as expect.js: no own keys
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return a == b; // eslint-disable-line eqeqeq
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && eql(a[k], b[k]));
}

function expect(actual) {
  const check = (ok, message) => {
    if (!ok) throw new Error(`expect.js: ${message}`);
  };
  const typeOf = (type) =>
    typeof type === "string"
      ? check(type === "array" ? Array.isArray(actual) : typeof actual === type, `expected a ${type}`)
      : check(actual instanceof type, `expected an instance of ${type.name}`);
  const be = (expected) => check(actual === expected, `expected ${String(actual)} to be ${String(expected)}`);
  be.a = be.an = typeOf;
  const assertion = {
    be,
    equal: be,
    a: typeOf,
    an: typeOf,
    eql: (expected) => check(eql(actual, expected), `expected ${inspect(actual)} to eql ${inspect(expected)}`),
    match: (re) => check(re.test(actual), `expected ${actual} to match ${re}`),
    throwException: (matcher) => {
      let thrown;
      try {
        actual();
      } catch (error) {
        thrown = { error };
      }
      check(thrown, "expected a throw");
      if (matcher instanceof RegExp) check(matcher.test(thrown.error.message), `expected ${thrown.error.message} to match ${matcher}`);
      else if (typeof matcher === "function") matcher(thrown.error);
    },
  };
  assertion.to = assertion;
  assertion.throwError = assertion.throwException;
  return assertion;
}
const inspect = (v) => {
  try {
    return JSON.stringify(snap(v));
  } catch {
    return String(v);
  }
};

// ---------------------------------------------------------------- mocha stand-in

function collect() {
  const root = { title: [], items: [] };
  let suite = root;
  // Each test file gets its own `describe` bound to its name (see bundle()).
  globalThis.__vectorDescribe = (file, title, fn) => {
    const child = { title: [...suite.title, title], file, items: [] };
    suite.items.push(child);
    const parent = suite;
    suite = child;
    try {
      fn.call({ timeout() {} });
    } finally {
      suite = parent;
    }
  };
  globalThis.it = (title, fn) => suite.items.push({ test: { title: [...suite.title, title], file: suite.file, fn } });
  globalThis.it.skip = (title) => suite.items.push({ test: { title: [...suite.title, title], file: suite.file } });
  return root;
}

let failCurrent;
for (const event of ["uncaughtException", "unhandledRejection"]) {
  process.on(event, (error) => {
    if (!failCurrent) throw error;
    failCurrent(error instanceof Error ? error : new Error(String(error)));
  });
}

async function runTests(root, run) {
  const results = [];
  const visit = async (suite) => {
    for (const item of suite.items) {
      if (!item.test) {
        await visit(item);
        continue;
      }
      const { title, file, fn } = item.test;
      recorder.current = { ops: [] };
      recorder.decoders = 0;
      let failure;
      if (!fn) failure = "skipped upstream";
      else {
        try {
          await new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error("timeout (10 s)")), 10_000);
            const done = (error) => (clearTimeout(timer), (failCurrent = undefined), error ? reject(error) : resolve());
            // As mocha: an exception thrown later, in a callback, fails the test that is running.
            failCurrent = done;
            Promise.resolve()
              .then(() => (fn.length > 0 ? fn(done) : fn()))
              .then(() => fn.length === 0 && done(), done);
          });
        } catch (error) {
          failure = String(error?.stack ?? error);
        }
      }
      await Promise.all(recorder.pending.splice(0));
      results.push({ run, file, title, ...(failure ? { failure } : {}), ops: recorder.current.ops });
      recorder.current = undefined;
    }
  };
  await visit(root);
  return results;
}

// ---------------------------------------------------------------- bundling

function git(...argv) {
  return execFileSync("git", ["-C", args.repo, ...argv], { encoding: "utf8", maxBuffer: 64 << 20 });
}

async function checkoutTests(commit, packageDir, into) {
  const files = git("ls-tree", "-r", "--name-only", commit, `${packageDir}/test`).split("\n").filter(Boolean);
  for (const file of files) {
    const target = join(into, relative(packageDir, file));
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, git("show", `${commit}:${file}`));
  }
  return files.map((file) => relative(packageDir, file));
}

async function bundle(pkg, entry, testDir, platform) {
  const plugin = {
    name: "parser-vectors",
    setup(build) {
      // `require("..")`, `require("../")`, `from ".."`: the package under test, wrapped.
      build.onResolve({ filter: /^\.\.\/?$/ }, () => ({ path: pkg, namespace: "recorder" }));
      build.onResolve({ filter: /^expect\.js$/ }, () => ({ path: "expect.js", namespace: "shim" }));
      build.onLoad({ filter: /.*/, namespace: "recorder" }, () => ({ contents: RECORDERS[pkg], resolveDir: ROOT, loader: "js" }));
      build.onLoad({ filter: /.*/, namespace: "shim" }, () => ({ contents: "module.exports = globalThis.__vectorExpect;", loader: "js" }));
      // Give each test file a `describe` of its own, so each test knows which file declared it.
      build.onLoad({ filter: /\.[jt]s$/ }, async ({ path }) => {
        if (!path.startsWith(testDir)) return undefined;
        const file = relative(dirname(testDir), path);
        const source = await readFile(path, "utf8");
        return { contents: `const describe = (title, fn) => globalThis.__vectorDescribe(${JSON.stringify(file)}, title, fn);\n${source}`, loader: path.endsWith(".ts") ? "ts" : "js" };
      });
    },
  };
  const result = await esbuild.build({
    entryPoints: [join(testDir, entry)],
    bundle: true,
    write: false,
    format: "cjs",
    platform,
    target: "node20",
    logLevel: "silent",
    nodePaths: [join(ROOT, "node_modules")],
    plugins: [plugin],
  });
  return result.outputFiles[0].text;
}

async function runBundle(code, run) {
  const root = collect();
  const module = { exports: {} };
  new Function("module", "exports", "require", code)(module, module.exports, createRequire(join(ROOT, "package.json")));
  return { results: await runTests(root, run), meta: recorder.meta };
}

/** What engine.io-parser's browser build needs and Node lacks. */
class FileReaderStandIn {
  readAsDataURL(blob) {
    blob.arrayBuffer().then((bytes) => {
      this.result = `data:${blob.type || "application/octet-stream"};base64,${Buffer.from(bytes).toString("base64")}`;
      this.onload?.();
    });
  }
}

// ---------------------------------------------------------------- main

/** The installed version (read from the file: the packages' "exports" hide package.json). */
const versionOf = async (pkg) => JSON.parse(await readFile(join(ROOT, "node_modules", pkg, "package.json"), "utf8")).version;

const SUITES = [
  {
    pkg: "socket.io-parser",
    commit: args["sio-commit"],
    dir: "packages/socket.io-parser",
    runs: [{ name: "node", entry: "index.js", platform: "node" }],
  },
  {
    pkg: "engine.io-parser",
    commit: args["eio-commit"],
    dir: "packages/engine.io-parser",
    runs: [
      { name: "node", entry: "index.ts", platform: "node" },
      { name: "browser", entry: "browser.ts", platform: "browser" },
    ],
  },
];

globalThis.__vectorExpect = expect;
const work = await mkdtemp(join(tmpdir(), "parser-vectors-"));
let stale = false;
try {
  for (const suite of SUITES) {
    const testDir = join(work, suite.pkg, "test");
    const files = await checkoutTests(suite.commit, suite.dir, join(work, suite.pkg));
    const tests = [];
    let meta;
    for (const run of suite.runs) {
      const code = await bundle(suite.pkg, run.entry, testDir, run.platform);
      const hadFileReader = "FileReader" in globalThis;
      if (run.platform === "browser" && !hadFileReader) globalThis.FileReader = FileReaderStandIn;
      try {
        const out = await runBundle(code, run.name);
        tests.push(...out.results);
        meta ??= out.meta;
      } finally {
        if (!hadFileReader) delete globalThis.FileReader;
      }
    }
    const failed = tests.filter((test) => test.failure);
    if (failed.length > 0) {
      for (const test of failed) console.error(`✗ [${test.run}] ${test.title.join(" › ")}\n${test.failure}\n`);
      throw new Error(`${failed.length} upstream ${suite.pkg} tests failed against the installed parser: no vectors written`);
    }
    const data = {
      package: suite.pkg,
      npmVersion: await versionOf(suite.pkg),
      repository: "https://github.com/socketio/socket.io",
      commit: suite.commit,
      testFiles: files.map((file) => `${suite.dir}/${file}`),
      runs: suite.runs.map(({ name, entry, platform }) => ({ name, entry: `${suite.dir}/test/${entry}`, build: platform })),
      meta,
      tests,
    };
    const text =
      `// Generated by scripts/extract-parser-vectors.mjs from ${suite.pkg}'s test files (MIT, see LICENSE).\n` +
      `// Do not edit by hand: regenerate, then review the diff.\n` +
      `import type { VectorSuite } from "../types.js";\n\n` +
      `const vectors: VectorSuite = ${JSON.stringify(data, null, 2)};\n\nexport default vectors;\n`;
    const target = join(OUT_DIR, suite.pkg, "vectors.ts");
    const ops = tests.reduce((n, test) => n + test.ops.length, 0);
    if (args.check) {
      const current = await readFile(target, "utf8").catch(() => "");
      if (current !== text) {
        stale = true;
        console.error(`${relative(ROOT, target)} is out of date`);
      } else console.log(`${relative(ROOT, target)}: up to date (${tests.length} tests, ${ops} recorded calls)`);
    } else {
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, text);
      console.log(`${relative(ROOT, target)}: ${tests.length} tests, ${ops} recorded calls (${suite.pkg}@${data.npmVersion}, ${suite.commit.slice(0, 8)})`);
    }
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
process.exit(stale ? 1 : 0);
