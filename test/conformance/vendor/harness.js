// Runs the official protocol test suites (written for mocha in Node or a browser) under
// vitest, without changing a line of them. Each suite does `await import("./node-imports.js")`
// in Node; the node-imports.js beside each vendored file is ours and only imports this. It
// gives the suites what their own node-imports.js did (chai 4 with chai-string, the `ws`
// WebSocket, fetch) plus what mocha gave them:
// - `describe` / `it` as globals, and a `this` with mocha's `timeout()` for the one
//   describe that calls `this.timeout(5000)` (vitest's own timeout, 30 s, is above it);
// - the suites' hard-coded server, http://localhost:3000, is redirected to the fixture that
//   the test file started (globalThis.PROTOCOL_SUITE_URL): fetch and WebSocket rewrite that
//   one origin and pass everything else through.
// fetch is Node's own (undici) rather than node-fetch; ws is 8.16.0 (package.json), which
// emits one message per event-loop turn: the suites attach a listener after each await,
// and older (and newer) ws versions deliver two frames of one TCP read at once.
import chai from "chai";
import chaiString from "chai-string";
import { describe, it } from "vitest";
import { WebSocket } from "ws";

chai.use(chaiString);

const UPSTREAM = /^(http|ws):\/\/localhost:3000(?=\/|$)/;

function redirect(url) {
  const text = String(url);
  if (!UPSTREAM.test(text)) return text;
  const target = globalThis.PROTOCOL_SUITE_URL;
  if (!target) throw new Error("PROTOCOL_SUITE_URL is not set: start the fixture first");
  return text.replace(UPSTREAM, (_, scheme) => target.replace(/^http/, scheme));
}

const nativeFetch = globalThis.fetch;
globalThis.fetch = (input, init) => nativeFetch(typeof input === "string" || input instanceof URL ? redirect(input) : input, init);

globalThis.WebSocket = class extends WebSocket {
  constructor(url, ...rest) {
    super(redirect(url), ...rest);
  }
};

globalThis.chai = chai;

const mochaContext = { timeout() {} };
globalThis.describe = (name, body) => describe(name, () => body.call(mochaContext));
// Cases whose assertions race against the network, run again on failure (a real defect
// fails every attempt). "ignores HTTP requests with same sid after upgrade" sends 2probe
// and 5, awaits a poll, and only then listens: it takes the next message to be its echo,
// so the 3probe must have arrived during the poll. Against a Node server on loopback it
// does; through wrangler's dev proxy on a loaded two-core machine it can come after.
// "should send ping/pong packets" (polling) must answer each ping by POST within the
// fixture's pingTimeout of 200 ms, through the dev proxy: when the other test files load
// both cores, a POST can take longer, and the session rightly ends ("1").
// "ignores WebSocket connection with same sid after upgrade" races the same proxy.
const RACY = new Set([
  "ignores HTTP requests with same sid after upgrade",
  "should send ping/pong packets",
  "ignores WebSocket connection with same sid after upgrade",
]);
globalThis.it = (name, body) => (RACY.has(name) ? it(name, { retry: 2 }, body) : it(name, body));
