/**
 * The chat page in Chromium, against the Worker served by wrangler (which builds
 * public/app.js through its [build] command): people on one pull request chat and
 * see each other type and come and go; other pull requests see nothing; a reload
 * re-joins; a dropped connection comes back with what it missed, or says what it could
 * not recover; refused sends show the server's reason. With history on (a second server,
 * HISTORY_RETENTION_DAYS=7), on the gateway path and on the direct path: earlier messages
 * load page by page, one's own messages are edited and deleted, reactions are toggled, and
 * mentions are highlighted, the other page seeing each change live.
 *
 * Uses Debian's Chromium (/usr/bin/chromium, or CHROMIUM_PATH); skipped without it.
 * UPDATE_SCREENSHOT=1 rewrites docs/screenshot.png.
 */
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { chromium, type Browser, type BrowserContext, type Frame, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { closeAll, collect, connected, type Socket } from "../support/client.js";
import { paths, type PathName } from "../support/paths.js";
import { serveWorker, type ServedWorker } from "../support/worker.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(`test/browser: SKIPPED, no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
}

const WAIT = 10_000;
let worker: ServedWorker;
/** The same settings, with history on. */
let historyWorker: ServedWorker;
let browser: Browser;
let nextPr = 1;
const freshPr = () => 7000 + nextPr++;
const contexts: BrowserContext[] = [];
const pageErrors: string[] = [];

interface Shown {
  who: string;
  text: string;
  own: boolean;
}

/** A page or one of its frames: the chat page, wherever it is shown. */
type Chat = Page | Frame;

/** Where a page connects: which server (history off by default), on which path (the page's default: direct). */
interface Where {
  server?: ServedWorker;
  path?: PathName;
}

/** Opens the chat page for `user` on pull request `pr` in a fresh browser context (its own cookies, its own socket). */
async function openChat(pr: number, user: string, { server = worker, path = "direct" }: Where = {}): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 400, height: 700 } });
  contexts.push(context);
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(`${user}: ${error.message}`));
  await page.goto(`${server.url}/?pr=${pr}&user=${user}${path === "gateway" ? "&path=gateway" : ""}`);
  await joined(page);
  return page;
}

/** Waits until the page has joined its room (connected, join acknowledged). */
async function joined(chat: Chat): Promise<void> {
  await chat.waitForFunction(() => document.documentElement.dataset.joined === "true", null, { timeout: WAIT });
}

function shown(chat: Chat): Promise<Shown[]> {
  return chat.locator("#messages li").evaluateAll((items) =>
    items.map((li) => ({
      who: li.querySelector(".who")?.textContent ?? "",
      text: li.querySelector(".text")?.textContent ?? "",
      own: li.classList.contains("own"),
    })),
  );
}

const typingLine = (chat: Chat) => chat.locator("#typing").textContent();
const people = (chat: Chat) => chat.locator("#people li").allTextContents();
const gaps = (chat: Chat) => chat.locator("#messages li.gap").allTextContents();

async function send(chat: Chat, text: string): Promise<void> {
  await chat.locator("#message").fill(text);
  await chat.locator("#message").press("Enter");
}

describe.skipIf(!haveChromium)("the chat page in Chromium", () => {
  beforeAll(async () => {
    // The room's own typing expiry out of the way, so the page's stop-typing is what is seen.
    // Short presence grace and recovery window, so departures and lost gaps show within a test.
    // A page taken offline leaves its old connection half-open: the server sees it end at the
    // next missed pong, so the heartbeat (2 s + 2 s) fits in the window, as the defaults do,
    // and the window (8 s) outlasts socket.io-client's reconnection backoff (up to 5 s).
    const vars = { TYPING_TIMEOUT_MS: "15000", PRESENCE_GRACE_MS: "500", RECOVERY_WINDOW_MS: "8000", PING_INTERVAL_MS: "2000", DIRECT_PING_INTERVAL_MS: "2000", PING_TIMEOUT_MS: "2000" };
    [worker, historyWorker, browser] = await Promise.all([
      serveWorker({ vars }),
      // The default keeps no history, as the API document has it; the page then offers none of it.
      serveWorker({ vars: { ...vars, HISTORY_RETENTION_DAYS: "7" } }),
      chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      }),
    ]);
  });
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((context) => context.close()));
    expect(pageErrors.splice(0)).toEqual([]);
  });
  afterAll(async () => {
    closeAll();
    await browser?.close();
    await Promise.all([worker?.close(), historyWorker?.close()]);
  });

  it("is served by the Worker: the page, its bundled script, and the Socket.IO endpoint behind them", async () => {
    const page = await fetch(`${worker.url}/`);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/app.js"></script>');
    expect(html).toContain('aria-live="polite"');

    const script = await fetch(`${worker.url}/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toMatch(/javascript/);
    expect(await script.text()).toContain("socket.io-client");

    expect(await (await fetch(`${worker.url}/healthz`)).json()).toEqual({ ok: true, service: "pr-rooms" });
    // The Worker's Engine.IO answer, not an asset: a polling handshake gets the open packet.
    const engine = await fetch(`${worker.url}/socket.io/?EIO=4&transport=polling`);
    expect(engine.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await engine.text()).toMatch(/^0\{"sid":/);
  });

  it("two people on one pull request see each other's messages and typing; another pull request sees nothing", async () => {
    const pr = freshPr();
    const [john, jane, elsewhere] = await Promise.all([
      openChat(pr, "johndoe"),
      openChat(pr, "janedoe"),
      openChat(freshPr(), "mallory"),
    ]);
    await expect.poll(() => john.locator("#status").getAttribute("data-state")).toBe("connected");
    expect(await john.locator("#message").evaluate((input) => input === document.activeElement)).toBe(true);

    // Jane types: John sees it, Jane does not see herself.
    await jane.locator("#message").pressSequentially("Looks good", { delay: 20 });
    await expect.poll(() => typingLine(john), { timeout: WAIT }).toBe("janedoe is typing…");
    expect(await typingLine(jane)).toBe("");

    // Enter sends; the indicator goes away; both see it, Jane's own is marked.
    await jane.locator("#message").press("Enter");
    await expect.poll(() => shown(john), { timeout: WAIT }).toEqual([{ who: "janedoe", text: "Looks good", own: false }]);
    await expect.poll(() => typingLine(john), { timeout: WAIT }).toBe("");
    await expect.poll(() => shown(jane), { timeout: WAIT }).toEqual([{ who: "janedoe", text: "Looks good", own: true }]);
    expect(await jane.locator("#message").inputValue()).toBe("");
    expect(await jane.locator("#messages li time").getAttribute("datetime")).toMatch(/^\d{4}-\d\d-\d\dT/);

    // John answers with the button; markup in a message is shown as text.
    await john.locator("#message").fill('<img src=x onerror="window.hacked=1"> approved');
    await john.locator("#send").click();
    const expected = [
      { who: "janedoe", text: "Looks good", own: false },
      { who: "johndoe", text: '<img src=x onerror="window.hacked=1"> approved', own: true },
    ];
    await expect.poll(() => shown(john), { timeout: WAIT }).toEqual(expected);
    await expect.poll(() => shown(jane), { timeout: WAIT }).toEqual(expected.map((m) => ({ ...m, own: !m.own })));
    expect(await jane.evaluate(() => ("hacked" in window) || document.querySelector("#messages img") !== null)).toBe(false);

    // No history on this server: nothing to load, and no controls that change a stored message.
    await expect.poll(() => jane.evaluate(() => document.documentElement.dataset.history), { timeout: WAIT }).toBe("off");
    expect(await jane.locator("#earlier").isVisible()).toBe(false);
    expect(await jane.locator("#messages .actions").first().isVisible()).toBe(false);

    // Blank input cannot be sent, by button or by Enter.
    await jane.locator("#message").fill("   ");
    expect(await jane.locator("#send").isDisabled()).toBe(true);
    await jane.locator("#message").press("Enter");

    // Blur stops typing.
    await john.locator("#message").pressSequentially("one more", { delay: 20 });
    await expect.poll(() => typingLine(jane), { timeout: WAIT }).toBe("johndoe is typing…");
    await john.locator("#pr").focus();
    await expect.poll(() => typingLine(jane), { timeout: WAIT }).toBe("");

    // The other pull request heard none of it: its own message, sent last, is all it shows.
    await send(elsewhere, "anyone here?");
    await expect.poll(() => shown(elsewhere), { timeout: WAIT }).toEqual([{ who: "mallory", text: "anyone here?", own: true }]);
    expect(await shown(jane)).toHaveLength(2);
    expect(await typingLine(elsewhere)).toBe("");
  });

  it("sends typing at most every 2 s while keys are pressed, and stop-typing after 3 s idle", async () => {
    const pr = freshPr();
    const observer = await connected(worker.url);
    expect(await observer.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: pr, username: "observer" })).toMatchObject({ ok: true });
    const notices: Array<{ event: string; at: number }> = [];
    observer.on("typing", () => notices.push({ event: "typing", at: Date.now() }));
    observer.on("stop-typing", () => notices.push({ event: "stop-typing", at: Date.now() }));
    const seen = collect(observer, "pr-room-message");

    const john = await openChat(pr, "johndoe");
    // About 4.5 s of steady typing: a typing at the first key, then one every 2 s.
    const firstKey = Date.now();
    await john.locator("#message").pressSequentially("a".repeat(30), { delay: 150 });
    const lastKey = Date.now();

    // Idle: the page stops by itself after 3 s (the room's expiry is 15 s here). The stop comes
    // after every typing the page sent, on the same connection: then all of them are counted.
    await expect.poll(() => notices.at(-1)?.event, { timeout: WAIT }).toBe("stop-typing");
    const typing = notices.filter((n) => n.event === "typing");
    expect(notices.filter((n) => n.event === "stop-typing")).toHaveLength(1);
    expect(typing.length).toBeGreaterThanOrEqual(2);
    expect(typing.length).toBeLessThanOrEqual(Math.floor((lastKey - firstKey) / 2000) + 1);
    // Seen by the observer: a loaded machine delays one notice more than the next, so the 2 s the page keeps
    // between them may look shorter here; a page that sent per key (150 ms) would still fail this and the count above.
    for (let i = 1; i < typing.length; i++) expect(typing[i]!.at - typing[i - 1]!.at).toBeGreaterThanOrEqual(1500);
    expect(notices.at(-1)!.at - lastKey).toBeGreaterThanOrEqual(2500);
    expect(notices.at(-1)!.at - lastKey).toBeLessThan(4500);
    expect(seen).toEqual([]);
  });

  it("re-joins after a reload and goes on chatting", async () => {
    const pr = freshPr();
    const [john, jane] = await Promise.all([openChat(pr, "johndoe"), openChat(pr, "janedoe")]);
    await send(john, "before the reload");
    await expect.poll(() => shown(jane), { timeout: WAIT }).toHaveLength(1);

    await john.reload();
    await joined(john);
    expect(await john.locator("#pr").inputValue()).toBe(String(pr));
    expect(await john.locator("#user").inputValue()).toBe("johndoe");
    expect(await shown(john)).toEqual([]); // nothing is stored

    await send(john, "after the reload");
    await send(jane, "welcome back");
    await expect.poll(() => shown(jane), { timeout: WAIT }).toEqual([
      { who: "johndoe", text: "before the reload", own: false },
      { who: "johndoe", text: "after the reload", own: false },
      { who: "janedoe", text: "welcome back", own: true },
    ]);
    await expect.poll(() => shown(john), { timeout: WAIT }).toEqual([
      { who: "johndoe", text: "after the reload", own: true },
      { who: "janedoe", text: "welcome back", own: false },
    ]);
  });

  it("shows the server's reason for a refused send and keeps the draft", async () => {
    const pr = freshPr();
    const [john, jane] = await Promise.all([openChat(pr, "johndoe"), openChat(pr, "janedoe")]);
    const long = "x".repeat(4001);
    await send(john, long);
    await expect.poll(() => john.locator("#alert").textContent(), { timeout: WAIT }).toBe(
      "Not sent: message is 4001 characters; the limit is 4000",
    );
    expect(await john.locator("#alert").getAttribute("data-code")).toBe("message_too_long");
    expect(await john.locator("#alert").getAttribute("role")).toBe("alert");
    expect(await john.locator("#message").inputValue()).toBe(long);

    // Shortened, it goes through and the alert clears.
    await send(john, "x".repeat(4000));
    await expect.poll(() => shown(jane), { timeout: WAIT }).toEqual([{ who: "johndoe", text: "x".repeat(4000), own: false }]);
    await expect.poll(() => john.locator("#alert").textContent(), { timeout: WAIT }).toBe("");
  });

  it("picks a room from the form, and the URL follows", async () => {
    const context = await browser.newContext({ viewport: { width: 400, height: 700 } });
    contexts.push(context);
    const page = await context.newPage();
    page.on("pageerror", (error) => pageErrors.push(`form: ${error.message}`));
    await page.goto(`${worker.url}/`);
    // No pull request chosen yet: no connection (the page connects to its room directly).
    await expect.poll(() => page.locator("#status").getAttribute("data-state"), { timeout: WAIT }).toBe("idle");
    expect(await page.locator("#pr").evaluate((input) => input === document.activeElement)).toBe(true);
    expect(await page.locator("#message").isDisabled()).toBe(true);

    const pr = freshPr();
    await page.locator("#pr").fill(`00${pr}`);
    await page.locator("#user").fill("  alice ");
    await page.locator("#user").press("Enter");
    await joined(page);
    expect(new URL(page.url()).search).toBe(`?pr=${pr}&user=alice`);
    expect(await page.locator("#title").textContent()).toBe(`Pull request #${pr}`);
    await send(page, "hello from the form");
    await expect.poll(() => shown(page), { timeout: WAIT }).toEqual([{ who: "alice", text: "hello from the form", own: true }]);
  });

  it("makes the screenshot of two people chatting", async () => {
    const pr = 123; // as in the README's link; no other test uses it
    const context = await browser.newContext({ viewport: { width: 808, height: 560 } });
    contexts.push(context);
    const page = await context.newPage();
    page.on("pageerror", (error) => pageErrors.push(`screenshot: ${error.message}`));
    const frame = (user: string) =>
      `<iframe name="${user}" title="${user}" src="${worker.url}/?pr=${pr}&user=${user}"></iframe>`;
    await page.setContent(
      `<style>body{margin:0;padding:8px;display:flex;gap:8px;background:#d1d9e0}
       iframe{width:392px;height:544px;border:0;border-radius:10px;background:#fff}</style>
       ${frame("johndoe")}${frame("janedoe")}`,
    );
    const john = page.frame({ name: "johndoe" })!;
    const jane = page.frame({ name: "janedoe" })!;
    await Promise.all([joined(john), joined(jane)]);
    const lines: Array<[Frame, string]> = [
      [john, "Pushed the fix for the flaky upload test."],
      [jane, "Nice! Does it cover the retry path too?"],
      [john, "Yes: see the new case in upload.test.ts, it fails without the fix."],
      [jane, "Great, approving now."],
    ];
    for (const [index, [chat, text]] of lines.entries()) {
      await send(chat, text);
      await expect.poll(() => shown(john), { timeout: WAIT }).toHaveLength(index + 1);
      await expect.poll(() => shown(jane), { timeout: WAIT }).toHaveLength(index + 1);
    }
    await john.locator("#message").pressSequentially("Thanks", { delay: 20 });
    await expect.poll(() => typingLine(jane), { timeout: WAIT }).toBe("johndoe is typing…");

    const png = await page.screenshot({ type: "png" });
    expect(png.byteLength).toBeLessThan(200_000);
    if (process.env.UPDATE_SCREENSHOT === "1") {
      const docs = new URL("../../docs/", import.meta.url);
      await mkdir(docs, { recursive: true });
      await writeFile(new URL("screenshot.png", docs), png);
    }
  });

  it("shows who is in the room, once per person, and follows arrivals and departures", async () => {
    const pr = freshPr();
    const john = await openChat(pr, "johndoe");
    await expect.poll(() => people(john), { timeout: WAIT }).toEqual(["johndoe"]);
    expect(await john.locator("#people li.me").textContent()).toBe("johndoe");
    const jane = await openChat(pr, "janedoe");
    await expect.poll(() => people(john), { timeout: WAIT }).toEqual(["janedoe", "johndoe"]);
    await expect.poll(() => people(jane), { timeout: WAIT }).toEqual(["janedoe", "johndoe"]);
    // A second tab of jane's is still one jane.
    const janeAgain = await openChat(pr, "janedoe");
    await expect.poll(() => people(janeAgain), { timeout: WAIT }).toEqual(["janedoe", "johndoe"]);
    expect(await people(john)).toEqual(["janedoe", "johndoe"]);
    await janeAgain.close();
    await jane.close();
    // Gone once the last tab closed and the grace (0.5 s here) passed.
    await expect.poll(() => people(john), { timeout: WAIT }).toEqual(["johndoe"]);
  });

  it("after a dropped connection, shows what was missed, once, with nothing lost", async () => {
    const pr = freshPr();
    const [john, jane] = await Promise.all([openChat(pr, "johndoe"), openChat(pr, "janedoe")]);
    await send(john, "before");
    await expect.poll(() => shown(jane), { timeout: WAIT }).toHaveLength(1);
    await jane.context().setOffline(true); // the network goes away; the page reconnects by itself
    await expect.poll(() => jane.locator("#status").getAttribute("data-state"), { timeout: WAIT }).toBe("reconnecting");
    await send(john, "while you were away 1");
    await send(john, "while you were away 2");
    await expect.poll(() => shown(john), { timeout: WAIT }).toHaveLength(3);
    await jane.context().setOffline(false);
    await expect.poll(() => shown(jane), { timeout: WAIT }).toEqual([
      { who: "johndoe", text: "before", own: false },
      { who: "johndoe", text: "while you were away 1", own: false },
      { who: "johndoe", text: "while you were away 2", own: false },
    ]);
    expect(await gaps(jane)).toEqual([]);
    await joined(jane);
    await send(jane, "back");
    await expect.poll(() => shown(john), { timeout: WAIT }).toHaveLength(4);
  });

  it("says so when a gap could not be recovered (away longer than the recovery window)", async () => {
    const pr = freshPr();
    const [john, jane] = await Promise.all([openChat(pr, "johndoe"), openChat(pr, "janedoe")]);
    await send(john, "before");
    await expect.poll(() => shown(jane), { timeout: WAIT }).toHaveLength(1);
    await jane.context().setOffline(true);
    await expect.poll(() => jane.locator("#status").getAttribute("data-state"), { timeout: WAIT }).toBe("reconnecting");
    await send(john, "lost 1");
    await send(john, "lost 2");
    await expect.poll(() => shown(john), { timeout: WAIT }).toHaveLength(3);
    // Past the 8 s recovery window, counted from when the server saw jane's connection end (at
    // most pingInterval + pingTimeout, 4 s, after it went): the room has forgotten it.
    const wentAway = Date.now();
    await expect.poll(() => Date.now() - wentAway, { timeout: 2 * WAIT, interval: 250 }).toBeGreaterThan(12_500);
    await jane.context().setOffline(false);
    await joined(jane);
    await expect.poll(() => gaps(jane), { timeout: WAIT }).toEqual(["2 messages or changes made while you were disconnected could not be recovered."]);
    await send(john, "after");
    await expect.poll(() => shown(jane), { timeout: WAIT }).toEqual([
      { who: "johndoe", text: "before", own: false },
      { who: "", text: "", own: false }, // the gap notice, in its place
      { who: "johndoe", text: "after", own: false },
    ]);
  }, 60_000);

  it("works over long-polling only (transport=polling), beside a WebSocket page", async () => {
    const pr = freshPr();
    const context = await browser.newContext({ viewport: { width: 400, height: 700 } });
    contexts.push(context);
    const polling = await context.newPage();
    polling.on("pageerror", (error) => pageErrors.push(`polling: ${error.message}`));
    const transports = new Set<string>();
    polling.on("request", (request) => {
      const url = new URL(request.url());
      if (url.pathname === "/socket.io/") transports.add(url.searchParams.get("transport") ?? "");
    });
    polling.on("websocket", () => transports.add("websocket"));
    await polling.goto(`${worker.url}/?pr=${pr}&user=pollster&transport=polling`);
    await joined(polling);
    const ws = await openChat(pr, "socketeer");
    await expect.poll(() => people(polling), { timeout: WAIT }).toEqual(["pollster", "socketeer"]);
    await send(polling, "over polling");
    // Two senders have no order between them: the second speaks once the first was heard.
    await expect.poll(() => shown(ws), { timeout: WAIT }).toHaveLength(1);
    await send(ws, "over a WebSocket");
    const expected = [
      { who: "pollster", text: "over polling", own: true },
      { who: "socketeer", text: "over a WebSocket", own: false },
    ];
    await expect.poll(() => shown(polling), { timeout: WAIT }).toEqual(expected);
    await expect.poll(() => shown(ws), { timeout: WAIT }).toEqual(expected.map((m) => ({ ...m, own: !m.own })));
    // It never left polling.
    expect([...transports]).toEqual(["polling"]);
  });

  describe.each(paths)("with history on, on the %s path", (path, optionsFor) => {
    const where: Where = { get server() { return historyWorker; }, path };
    let nextHistoryPr = path === "gateway" ? 8000 : 8500;
    const historyPr = () => nextHistoryPr++;

    /** The page's messages with what the discussion adds: edited, deleted, reactions (`👍 2*`: yours among them). */
    function items(chat: Chat) {
      return chat.locator("#messages li").evaluateAll((lis) =>
        lis.map((li) => ({
          who: li.querySelector(".who")?.textContent ?? "",
          text: li.classList.contains("deleted") ? `(${li.textContent})` : (li.querySelector(".text")?.textContent ?? ""),
          edited: li.querySelector<HTMLElement>(".edited")?.hidden === false,
          reactions: [...li.querySelectorAll(".reactions button")].map((b) => `${b.textContent}${b.classList.contains("mine") ? "*" : ""}`),
        })),
      );
    }
    const texts = async (chat: Chat) => (await items(chat)).map((item) => item.text);
    const message = (chat: Chat, index: number) => chat.locator("#messages li").nth(index);
    const historyOn = (chat: Chat) => chat.waitForFunction(() => document.documentElement.dataset.history === "on", null, { timeout: WAIT });

    /** A client of the test's own on this path, joined as `username`, for messages the pages did not write. */
    async function member(pr: number, username: string): Promise<Socket> {
      const socket = await connected(historyWorker.url, optionsFor(pr));
      expect(await socket.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: pr, username })).toMatchObject({ ok: true });
      return socket;
    }

    it("loads earlier messages page by page, each once, in order, as they are now", async () => {
      const pr = historyPr();
      const sockets: string[] = [];
      const [john, jane] = await Promise.all([openChat(pr, "johndoe", where), openChat(pr, "janedoe", where)]);
      await Promise.all([historyOn(john), historyOn(jane)]);
      expect(await john.locator("#earlier").isVisible()).toBe(false); // a new room: nothing earlier

      // 65 messages, more than two of the page's pages (30), from a bot with four connections
      // (each stays within its burst of the rate limit), taking turns so that seq follows n.
      const bots = await Promise.all([1, 2, 3, 4].map(() => member(pr, "reviewbot")));
      const sent: Array<{ id: string }> = [];
      for (let n = 1; n <= 65; n++) {
        const reply = await bots[n % 4]!.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: pr, username: "reviewbot", message: `message ${n}` });
        expect(reply).toMatchObject({ ok: true });
        sent.push(reply);
      }
      expect(await bots[0]!.timeout(5000).emitWithAck("edit-pr-room-message", { pullRequestId: pr, id: sent[1]!.id, message: "message 2, edited" })).toMatchObject({ ok: true, version: 2 });
      expect(await bots[0]!.timeout(5000).emitWithAck("delete-pr-room-message", { pullRequestId: pr, id: sent[2]!.id })).toMatchObject({ ok: true });
      await expect.poll(async () => (await texts(john)).slice(0, 3), { timeout: WAIT }).toEqual(["message 1", "message 2, edited", "(message deleted)"]);
      await expect.poll(async () => (await texts(john)).length, { timeout: WAIT }).toBe(65);

      // After a reload nothing is shown by itself; there is something earlier.
      john.on("websocket", (socket) => sockets.push(socket.url()));
      await john.reload();
      await joined(john);
      await historyOn(john);
      expect(await texts(john)).toEqual([]);
      await expect.poll(() => john.locator("#earlier").isVisible(), { timeout: WAIT }).toBe(true);
      // The page took the path it was told to.
      expect(sockets.map((url) => new URL(url).searchParams.get("pullRequestId"))).toEqual([path === "direct" ? String(pr) : null]);

      await send(jane, "said after the reload");
      await expect.poll(() => texts(john), { timeout: WAIT }).toEqual(["said after the reload"]);
      let clicks = 0;
      while (await john.locator("#earlier").isVisible()) {
        await john.locator("#earlier").click();
        clicks++;
        await expect.poll(() => john.locator("#earlier").textContent(), { timeout: WAIT }).toBe("Load earlier messages");
      }
      expect(clicks).toBe(3); // 30, 30, 5
      const expected = Array.from({ length: 65 }, (_, i) => `message ${i + 1}`);
      expected[1] = "message 2, edited";
      expected[2] = "(message deleted)";
      const all = await items(john);
      expect(all.map((item) => item.text)).toEqual([...expected, "said after the reload"]);
      expect(all[1]).toEqual({ who: "reviewbot", text: "message 2, edited", edited: true, reactions: [] });
      expect(all[2]).toEqual({ who: "", text: "(message deleted)", edited: false, reactions: [] });
      expect(all.filter((item) => item.edited)).toHaveLength(1);
      expect(await john.locator("#alert").textContent()).toBe("");
      for (const bot of bots) bot.close();
    });

    it("edits and deletes only one's own messages; the other page sees each change live", async () => {
      const pr = historyPr();
      const [john, jane] = await Promise.all([openChat(pr, "johndoe", where), openChat(pr, "janedoe", where)]);
      await Promise.all([historyOn(john), historyOn(jane)]);
      await send(john, "helo");
      await expect.poll(() => texts(jane), { timeout: WAIT }).toEqual(["helo"]);
      await send(jane, "hi john");
      await expect.poll(() => texts(john), { timeout: WAIT }).toEqual(["helo", "hi john"]);

      // Edit and Delete on one's own message only; anyone may react.
      for (const [chat, own, theirs] of [[john, 0, 1], [jane, 1, 0]] as const) {
        expect(await message(chat, own).locator(".edit").isVisible()).toBe(true);
        expect(await message(chat, own).locator(".delete").isVisible()).toBe(true);
        expect(await message(chat, theirs).locator(".edit, .delete").count()).toBe(0);
        expect(await message(chat, theirs).locator(".react-add").isVisible()).toBe(true);
      }

      // Escape cancels an edit.
      await message(john, 0).locator(".edit").click();
      const editor = message(john, 0).locator(".editor textarea");
      expect(await editor.inputValue()).toBe("helo");
      expect(await editor.evaluate((input) => input === document.activeElement)).toBe(true);
      await editor.fill("never saved");
      await editor.press("Escape");
      expect(await message(john, 0).locator(".editor").count()).toBe(0);
      expect((await items(john))[0]).toEqual({ who: "johndoe", text: "helo", edited: false, reactions: [] });

      // A refused edit says why, and keeps the editor open.
      await message(john, 0).locator(".edit").click();
      await editor.fill("x".repeat(4001));
      await editor.press("Enter");
      await expect.poll(() => john.locator("#alert").textContent(), { timeout: WAIT }).toBe("Not edited: message is 4001 characters; the limit is 4000");
      expect(await john.locator("#alert").getAttribute("data-code")).toBe("message_too_long");
      expect(await editor.isEnabled()).toBe(true);

      // Enter saves: both pages show the new text, marked edited; the mention in it is jane's.
      await editor.fill("hello @janedoe");
      await editor.press("Enter");
      const edited = { who: "johndoe", text: "hello @janedoe", edited: true, reactions: [] };
      await expect.poll(async () => (await items(john))[0], { timeout: WAIT }).toEqual(edited);
      await expect.poll(async () => (await items(jane))[0], { timeout: WAIT }).toEqual(edited);
      expect(await message(john, 0).locator(".editor").count()).toBe(0);
      expect(await john.locator("#alert").textContent()).toBe("");
      await expect.poll(() => message(jane, 0).locator(".mention.me").allTextContents(), { timeout: WAIT }).toEqual(["@janedoe"]);
      expect(await message(john, 0).locator(".mention").allTextContents()).toEqual(["@janedoe"]);
      expect(await message(john, 0).locator(".mention.me").count()).toBe(0);

      // Delete asks first; Cancel keeps the message.
      await message(john, 0).locator(".delete").click();
      expect(await message(john, 0).locator(".confirm").textContent()).toBe("Delete this message? Delete Cancel");
      await message(john, 0).locator(".confirm .cancel").click();
      expect(await message(john, 0).locator(".confirm").count()).toBe(0);
      expect(await message(john, 0).locator(".delete").isVisible()).toBe(true);
      await message(john, 0).locator(".delete").click();
      await message(john, 0).locator(".confirm-delete").click();
      const after = ["(message deleted)", "hi john"];
      await expect.poll(() => texts(john), { timeout: WAIT }).toEqual(after);
      await expect.poll(() => texts(jane), { timeout: WAIT }).toEqual(after);
      expect(await message(john, 0).locator("button").count()).toBe(0);
      expect(await john.locator("#alert").textContent()).toBe("");
    });

    it("toggles reactions on both pages, and highlights mentions, yours more", async () => {
      const pr = historyPr();
      const [john, jane] = await Promise.all([openChat(pr, "johndoe", where), openChat(pr, "janedoe", where)]);
      await Promise.all([historyOn(john), historyOn(jane)]);
      const text = "@johndoe ship it? cc @carol, not ann@example.com <b>@mallory</b>";
      await send(jane, text);
      await expect.poll(() => texts(john), { timeout: WAIT }).toEqual([text]);
      await expect.poll(() => texts(jane), { timeout: WAIT }).toEqual([text]);

      // Mentions: highlighted on both pages; johndoe's own more, on his page only. Markup stays text.
      expect(await message(john, 0).locator(".mention").allTextContents()).toEqual(["@johndoe", "@carol", "@mallory"]);
      expect(await message(john, 0).locator(".mention.me").allTextContents()).toEqual(["@johndoe"]);
      expect(await message(john, 0).getAttribute("class")).toContain("mentions-me");
      expect(await message(jane, 0).locator(".mention").allTextContents()).toEqual(["@johndoe", "@carol", "@mallory"]);
      expect(await message(jane, 0).locator(".mention.me").count()).toBe(0);
      expect(await message(jane, 0).getAttribute("class")).not.toContain("mentions-me");
      expect(await john.locator("#messages b").count()).toBe(0);

      const reactions = async (chat: Chat) => (await items(chat))[0]!.reactions;
      const both = async (forJohn: string[], forJane: string[]) => {
        await expect.poll(() => reactions(john), { timeout: WAIT }).toEqual(forJohn);
        await expect.poll(() => reactions(jane), { timeout: WAIT }).toEqual(forJane);
      };
      // The picker adds one; the page's own is highlighted.
      await message(john, 0).locator(".react-add").click();
      expect(await message(john, 0).locator(".picker button").allTextContents()).toEqual(["👍", "👎", "😄", "🎉", "❤️", "👀"]);
      await message(john, 0).getByRole("button", { name: "React with 👍" }).click();
      expect(await message(john, 0).locator(".picker").count()).toBe(0);
      await both(["👍 1*"], ["👍 1"]);
      // Clicking someone else's reaction joins it.
      await message(jane, 0).locator(".reactions button", { hasText: "👍" }).click();
      await both(["👍 2*"], ["👍 2*"]);
      await message(jane, 0).locator(".react-add").click();
      await message(jane, 0).getByRole("button", { name: "React with 🎉" }).click();
      await both(["👍 2*", "🎉 1"], ["👍 2*", "🎉 1*"]);
      // Clicking one's own takes it back.
      await message(john, 0).locator(".reactions button", { hasText: "👍" }).click();
      await both(["👍 1", "🎉 1"], ["👍 1*", "🎉 1*"]);
      expect(await message(john, 0).locator(".reactions button", { hasText: "👍" }).getAttribute("aria-pressed")).toBe("false");
      await message(jane, 0).locator(".reactions button", { hasText: "👍" }).click();
      await message(jane, 0).locator(".reactions button", { hasText: "🎉" }).click();
      await both([], []);
      expect(await john.locator("#alert").textContent()).toBe("");
      expect(await jane.locator("#alert").textContent()).toBe("");
    });
  });
});
