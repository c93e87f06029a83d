/**
 * The chat page: one pull request room, over socket.io-client. It connects directly to
 * its room (`query: { pullRequestId }`: the room's object holds the socket), shows who is
 * here, and after a reconnect either picks up exactly where it was (connection state
 * recovery: the missed messages arrive, once each) or says what could not be recovered.
 * Bundled with socket.io-client into public/app.js by scripts/build-web.mjs.
 *
 * User content only ever reaches the DOM through textContent.
 */
import { io } from "socket.io-client";
import { connectToPullRequest, type ChatSocket, type ClientPayload } from "../src/client.js";
import type { ClientEventName, PresenceNotice, PrRoomError, PrRoomMessage, TypingNotice } from "../src/chat/events.js";

// Event names, checked against the server's contract. src/chat/events.ts is imported for types only (its
// values would bundle zod); of src/, only src/client.ts's connectToPullRequest (zod-free) is bundled.
const JOIN = "join-pr-room" satisfies ClientEventName;
const SEND = "send-message-to-pr-room" satisfies ClientEventName;
const LEAVE = "leave-pr-room" satisfies ClientEventName;
const TYPING = "typing" satisfies ClientEventName;
const STOP_TYPING = "stop-typing" satisfies ClientEventName;
const USERS = "get-pr-room-users" satisfies ClientEventName;

/** Send `typing` at most this often while keys are pressed. */
const TYPING_EVERY_MS = 2000;
/** Send `stop-typing` after this long without a key. */
const TYPING_IDLE_MS = 3000;
/** Forget someone's typing after this long without news (the server expires it after 5 s by default). */
const TYPING_STALE_MS = 8000;
const ACK_TIMEOUT_MS = 10_000;
/** Messages kept on screen; older ones are dropped. */
const MAX_MESSAGES = 500;
const MAX_REJOINS = 5;

type RoomRefOut = ClientPayload<typeof JOIN>;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const titleEl = $<HTMLHeadingElement>("title");
const statusEl = $<HTMLParagraphElement>("status");
const reconnectButton = $<HTMLButtonElement>("reconnect");
const roomForm = $<HTMLFormElement>("room");
const prInput = $<HTMLInputElement>("pr");
const userInput = $<HTMLInputElement>("user");
const logEl = $<HTMLElement>("log");
const list = $<HTMLOListElement>("messages");
const typingEl = $<HTMLParagraphElement>("typing");
const peopleEl = $<HTMLUListElement>("people");
const alertEl = $<HTMLParagraphElement>("alert");
const composer = $<HTMLFormElement>("composer");
const messageInput = $<HTMLInputElement>("message");
const sendButton = $<HTMLButtonElement>("send");

/** The room this page is in: `key` is the canonical id ("0123" → "123"), `ref` what is sent. */
interface Room {
  key: string;
  ref: RoomRefOut;
}
let room: Room | null = null;
let joined = false;
let rejoins = 0;
let focusOnJoin = false;
/** The newest message seq seen in this room (or the room's seq at the join): what a rejoin compares with. */
let lastSeq = 0;
/** Joined this room before, on this page: a rejoin that was not a recovery may have missed messages. */
let everJoined = false;

/** For events whose answer the page does not need (the typed events make every ack explicit). */
const noAnswer = () => {};

/** The query the page was opened with (chooseRoom then rewrites the URL, and reads it anew). */
const query = new URLSearchParams(location.search);
// With identity on (AUTH_SECRET), the page needs a token from your backend: `?token=…` (see README, Security).
const token = query.get("token");
/** `?transport=polling` for networks that break WebSockets (the default connects over WebSocket directly). */
const transports = query.get("transport") === "polling" ? ["polling"] : ["websocket"];

/**
 * A socket for one room: the URL names the pull request, so the room's own object holds
 * the connection (the direct path). A different room is a different connection.
 */
function connect(key: string): ChatSocket {
  // Typed from the server's own schemas (src/client.ts): a wrong payload does not compile.
  const next = connectToPullRequest(location.origin, key, { transports, forceNew: true, ...(token ? { auth: { token } } : {}) });
  listen(next);
  return next;
}

/** Before a room is chosen there is no connection; `socket` is always the current room's. */
let socket: ChatSocket = io(location.origin, { autoConnect: false, transports });

// ---- connection state -------------------------------------------------------

type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "disconnected";

function setState(state: ConnectionState, detail = ""): void {
  statusEl.dataset.state = state;
  const label = { idle: "Not connected", connecting: "Connecting…", connected: "Connected", reconnecting: "Reconnecting…", disconnected: "Disconnected" }[state];
  statusEl.textContent = detail ? `${label} (${detail})` : label;
  reconnectButton.hidden = state !== "disconnected";
  updateComposer();
}

function listen(s: ChatSocket): void {
  const current = () => s === socket;
  s.on("connect", () => {
    if (!current()) return;
    setState("connected");
    if (!room) return;
    if (s.recovered && joined) {
      // Recovered: still in the room, and every missed message is on its way, once each.
      // Who is here may have changed meanwhile: ask.
      refreshPeople(room);
      return;
    }
    join(room);
  });
  s.on("disconnect", (reason) => {
    if (!current()) return;
    typingActive = false;
    clearTyping();
    // The client reconnects by itself unless the server or this page closed the connection.
    setState(s.active ? "reconnecting" : "disconnected", s.active ? "" : reason);
  });
  s.on("connect_error", (error) => {
    if (current() && !s.active) setState("disconnected", error.message);
  });
  s.io.on("reconnect_attempt", (attempt) => current() && setState("reconnecting", `attempt ${attempt}`));
  s.io.on("reconnect_failed", () => current() && setState("disconnected", "gave up"));
  s.on("pr-room-error", (error) => current() && roomError(error));
  s.on("pr-room-message", (message) => current() && showMessage(message));
  s.on("typing", (notice) => current() && theirTyping(notice, true));
  s.on("stop-typing", (notice) => current() && theirTyping(notice, false));
  s.on("pr-room-user-joined", (notice) => current() && presence(notice, true));
  s.on("pr-room-user-left", (notice) => current() && presence(notice, false));
}

reconnectButton.addEventListener("click", () => {
  setState("connecting");
  socket.connect();
});

// ---- the room ---------------------------------------------------------------

/** "0123" → "123"; null if not a positive id of at most 20 digits. */
function canonical(id: unknown): string | null {
  const text = String(id).trim();
  if (!/^\d{1,20}$/.test(text)) return null;
  const key = text.replace(/^0+/, "");
  return key === "" ? null : key;
}

function chooseRoom(prValue: string, userValue: string): void {
  const key = canonical(prValue);
  const username = userValue.trim();
  if (!key || !username) return;
  if (room && room.key === key && room.ref.username === username && joined) {
    messageInput.focus();
    return;
  }
  const sameRoom = room?.key === key;
  // Leave the old room, joined or still joining (a leave for a room not joined is harmless).
  if (room && socket.connected) socket.emit(LEAVE, room.ref, noAnswer);
  const id = Number.isSafeInteger(Number(key)) ? Number(key) : key;
  room = { key, ref: { pullRequestId: id, username } };
  joined = false;
  rejoins = 0;
  lastSeq = 0;
  everJoined = false;
  list.replaceChildren();
  seen.clear();
  clearTyping();
  showPeople([]);
  showAlert("");
  titleEl.textContent = `Pull request #${key}`;
  document.title = `#${key} · Pull request chat`;
  const params = new URLSearchParams(location.search);
  params.set("pr", key);
  params.set("user", username);
  history.replaceState(null, "", `${location.pathname}?${params}`);
  focusOnJoin = true;
  updateComposer();
  if (sameRoom && socket.connected) return join(room);
  // A room of its own: the connection names the pull request, so the room's object holds it.
  socket.close();
  setState("connecting");
  socket = connect(key);
}

function join(target: Room): void {
  joined = false;
  updateComposer();
  socket.timeout(ACK_TIMEOUT_MS).emit(JOIN, target.ref, (error, reply) => {
    if (room !== target) return;
    if (error) {
      // Unanswered: try again while connected, a few times.
      if (socket.connected && rejoins++ < MAX_REJOINS) return join(target);
      return showAlert("Could not join: the server did not answer.");
    }
    if (!reply.ok) return showAlert(`Could not join: ${reply.error.message}`, reply.error.code);
    const missed = everJoined ? reply.seq - lastSeq : 0;
    joined = true;
    everJoined = true;
    rejoins = 0;
    showAlert("");
    showPeople(reply.users);
    // A rejoin that was not a recovery: what was said meanwhile is gone. Say so, once, in place.
    if (missed > 0) showGap(missed);
    lastSeq = Math.max(lastSeq, reply.seq);
    updateComposer();
    if (focusOnJoin) {
      focusOnJoin = false;
      messageInput.focus();
    }
  });
}

roomForm.addEventListener("submit", (event) => {
  event.preventDefault();
  userInput.setCustomValidity(userInput.value.trim() ? "" : "Enter a username");
  if (!roomForm.reportValidity()) return;
  chooseRoom(prInput.value, userInput.value);
});
userInput.addEventListener("input", () => userInput.setCustomValidity(""));

function roomError(error: PrRoomError): void {
  const forThisRoom = room && error.pullRequestId !== undefined && canonical(error.pullRequestId) === room.key;
  if (error.event === JOIN && error.code === "room_unavailable" && forThisRoom && room) {
    // The room restarted under us: join again, as the server asks.
    joined = false;
    updateComposer();
    const target = room;
    if (rejoins++ < MAX_REJOINS) setTimeout(() => room === target && socket.connected && join(target), 250 * rejoins);
    else showAlert(error.message, error.code);
    return;
  }
  showAlert(error.message, error.code);
}

// ---- who is here ------------------------------------------------------------

const people = new Set<string>();

function showPeople(users: string[]): void {
  people.clear();
  for (const user of users) people.add(user);
  renderPeople();
}

function renderPeople(): void {
  const items = [...people].sort().map((user) => {
    const item = el("li", user === room?.ref.username ? "me" : "", user);
    item.dataset.user = user;
    return item;
  });
  peopleEl.replaceChildren(...items);
  peopleEl.setAttribute("aria-label", `${people.size} ${people.size === 1 ? "person" : "people"} in this room`);
}

function presence(notice: PresenceNotice, arrived: boolean): void {
  if (!room || canonical(notice.pullRequestId) !== room.key) return;
  if (arrived) people.add(notice.username);
  else people.delete(notice.username);
  renderPeople();
}

function refreshPeople(target: Room): void {
  socket.timeout(ACK_TIMEOUT_MS).emit(USERS, { pullRequestId: target.ref.pullRequestId }, (error, reply) => {
    if (room === target && !error && reply.ok) showPeople(reply.users);
  });
}

// ---- messages ---------------------------------------------------------------

const seen = new Set<string>();
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

/** Says where the list has a hole: messages the room sent while this page was away, not recovered. */
function showGap(count: number): void {
  const note = el("li", "gap", `${count} message${count === 1 ? "" : "s"} sent while you were disconnected could not be recovered.`);
  note.setAttribute("role", "note");
  list.append(note);
}

function showMessage(message: PrRoomMessage): void {
  // Dedupe by id: a recovery replays only what was missed, but a page never shows anything twice.
  if (!room || canonical(message.pullRequestId) !== room.key || seen.has(message.id)) return;
  seen.add(message.id);
  lastSeq = Math.max(lastSeq, message.seq);
  typists.delete(message.username);
  renderTyping();

  const own = message.username === room.ref.username;
  const item = el("li", own ? "own" : "", "");
  item.dataset.id = message.id;
  const sentAt = new Date(message.sentAt);
  const time = el("time", "", timeFormat.format(sentAt));
  time.dateTime = sentAt.toISOString();
  time.title = sentAt.toLocaleString();
  item.append(el("span", "who", message.username), ": ", el("span", "text", message.message), " ", time);

  const atBottom = logEl.scrollHeight - logEl.scrollTop - logEl.clientHeight < 48;
  list.append(item);
  while (list.childElementCount > MAX_MESSAGES) {
    const first = list.firstElementChild as HTMLElement;
    seen.delete(first.dataset.id ?? "");
    first.remove();
  }
  if (atBottom || own) logEl.scrollTop = logEl.scrollHeight;
}

// ---- typing, theirs ---------------------------------------------------------

const typists = new Map<string, ReturnType<typeof setTimeout>>();

function clearTyping(): void {
  for (const timer of typists.values()) clearTimeout(timer);
  typists.clear();
  renderTyping();
}

function renderTyping(): void {
  const names = [...typists.keys()].sort();
  typingEl.textContent =
    names.length === 0 ? ""
    : names.length === 1 ? `${names[0]} is typing…`
    : names.length === 2 ? `${names[0]} and ${names[1]} are typing…`
    : `${names.length} people are typing…`;
}

function theirTyping(notice: TypingNotice, typing: boolean): void {
  if (!room || canonical(notice.pullRequestId) !== room.key || notice.username === room.ref.username) return;
  clearTimeout(typists.get(notice.username));
  if (typing) {
    typists.set(notice.username, setTimeout(() => theirTyping(notice, false), TYPING_STALE_MS));
  } else {
    typists.delete(notice.username);
  }
  renderTyping();
}

// ---- typing, ours -----------------------------------------------------------

let typingActive = false;
let typingSentAt = 0;
let idleTimer: ReturnType<typeof setTimeout> | undefined;

function keyPressed(): void {
  if (!room || !joined) return;
  if (!messageInput.value.trim()) return stopTyping();
  const now = Date.now();
  if (!typingActive || now - typingSentAt >= TYPING_EVERY_MS) {
    socket.emit(TYPING, room.ref, noAnswer);
    typingSentAt = now;
    typingActive = true;
  }
  clearTimeout(idleTimer);
  idleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping(): void {
  clearTimeout(idleTimer);
  if (typingActive && room && joined) socket.emit(STOP_TYPING, room.ref, noAnswer);
  typingActive = false;
}

messageInput.addEventListener("input", () => {
  updateComposer();
  keyPressed();
});
messageInput.addEventListener("blur", stopTyping);

// ---- sending ----------------------------------------------------------------

function updateComposer(): void {
  const ready = Boolean(room && joined && socket.connected);
  document.documentElement.dataset.joined = String(ready);
  messageInput.disabled = !room;
  messageInput.placeholder = !room ? "Join a pull request first" : ready ? `Message as ${room.ref.username}` : "Joining…";
  sendButton.disabled = !(ready && messageInput.value.trim());
}

function showAlert(text: string, code = ""): void {
  alertEl.textContent = text;
  alertEl.dataset.code = code;
}

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = messageInput.value.trim();
  if (!text || !room || !joined) return;
  const target = room;
  stopTyping();
  messageInput.value = "";
  updateComposer();
  messageInput.focus();
  // A client id makes a resend (after a lost answer) harmless: the room delivers it once.
  const clientMessageId = newClientMessageId();
  socket.timeout(ACK_TIMEOUT_MS).emit(SEND, { ...target.ref, message: text, clientMessageId }, (error, reply) => {
    if (!error && reply.ok) return showAlert("");
    showAlert(
      error ? "Not sent: the server did not answer in time." : `Not sent: ${reply.ok ? "" : reply.error.message}`,
      error ? "timeout" : reply.ok ? "" : reply.error.code,
    );
    // Give the draft back, unless something new is being written.
    if (room === target && messageInput.value === "") {
      messageInput.value = text;
      updateComposer();
    }
  });
});

/** 128 random bits as hex. Not crypto.randomUUID: that exists only in secure contexts (https, localhost). */
function newClientMessageId(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// ---- start ------------------------------------------------------------------

prInput.value = query.get("pr") ?? "";
userInput.value = query.get("user") ?? "";
if (prInput.value && userInput.value && canonical(prInput.value) && userInput.value.trim()) {
  chooseRoom(prInput.value, userInput.value);
} else {
  (prInput.value ? userInput : prInput).focus();
}
if (!room) setState("idle", "choose a pull request");
