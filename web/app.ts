/**
 * The chat page: one pull request room, over socket.io-client as the API document
 * uses it. Bundled with socket.io-client into public/app.js by scripts/build-web.mjs.
 *
 * User content only ever reaches the DOM through textContent.
 */
import { io, type Socket } from "socket.io-client";
import type { ClientEventName, JoinAck, PrRoomError, PrRoomMessage, Refusal, SendAck, TypingNotice } from "../src/events.js";

// Event names, checked against the server's contract (types only: nothing of src/ is bundled).
const JOIN = "join-pr-room" satisfies ClientEventName;
const SEND = "send-message-to-pr-room" satisfies ClientEventName;
const LEAVE = "leave-pr-room" satisfies ClientEventName;
const TYPING = "typing" satisfies ClientEventName;
const STOP_TYPING = "stop-typing" satisfies ClientEventName;

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

interface RoomRefOut {
  pullRequestId: number | string;
  username: string;
}
interface ServerToClient {
  "pr-room-message": (message: PrRoomMessage) => void;
  typing: (notice: TypingNotice) => void;
  "stop-typing": (notice: TypingNotice) => void;
  "pr-room-error": (error: PrRoomError) => void;
}
interface ClientToServer {
  "join-pr-room": (ref: RoomRefOut, ack: (reply: JoinAck | Refusal) => void) => void;
  "send-message-to-pr-room": (message: RoomRefOut & { message: string }, ack: (reply: SendAck | Refusal) => void) => void;
  "leave-pr-room": (ref: RoomRefOut) => void;
  typing: (ref: RoomRefOut) => void;
  "stop-typing": (ref: RoomRefOut) => void;
}

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

// With identity on (AUTH_SECRET), the page needs a token from your backend: `?token=…` (see README, Security).
const token = new URLSearchParams(location.search).get("token");
const socket: Socket<ServerToClient, ClientToServer> = io(location.origin, {
  transports: ["websocket"],
  ...(token ? { auth: { token } } : {}),
});

// ---- connection state -------------------------------------------------------

type ConnectionState = "connecting" | "connected" | "reconnecting" | "disconnected";

function setState(state: ConnectionState, detail = ""): void {
  statusEl.dataset.state = state;
  const label = { connecting: "Connecting…", connected: "Connected", reconnecting: "Reconnecting…", disconnected: "Disconnected" }[state];
  statusEl.textContent = detail ? `${label} (${detail})` : label;
  reconnectButton.hidden = state !== "disconnected";
  updateComposer();
}

socket.on("connect", () => {
  setState("connected");
  if (room) join(room);
});
socket.on("disconnect", (reason) => {
  joined = false;
  typingActive = false;
  clearTyping();
  // The client reconnects by itself unless the server or this page closed the connection.
  setState(socket.active ? "reconnecting" : "disconnected", socket.active ? "" : reason);
});
socket.on("connect_error", (error) => {
  if (!socket.active) setState("disconnected", error.message);
});
socket.io.on("reconnect_attempt", (attempt) => setState("reconnecting", `attempt ${attempt}`));
socket.io.on("reconnect_failed", () => setState("disconnected", "gave up"));
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
  // Leave the old room, joined or still joining (a leave for a room not joined is harmless).
  if (room && socket.connected) socket.emit(LEAVE, room.ref);
  const id = Number.isSafeInteger(Number(key)) ? Number(key) : key;
  room = { key, ref: { pullRequestId: id, username } };
  joined = false;
  rejoins = 0;
  list.replaceChildren();
  seen.clear();
  clearTyping();
  showAlert("");
  titleEl.textContent = `Pull request #${key}`;
  document.title = `#${key} · Pull request chat`;
  const params = new URLSearchParams(location.search);
  params.set("pr", key);
  params.set("user", username);
  history.replaceState(null, "", `${location.pathname}?${params}`);
  focusOnJoin = true;
  updateComposer();
  if (socket.connected) join(room);
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
    joined = true;
    rejoins = 0;
    showAlert("");
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

socket.on("pr-room-error", (error) => {
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
});

// ---- messages ---------------------------------------------------------------

const seen = new Set<string>();
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

socket.on("pr-room-message", (message) => {
  if (!room || canonical(message.pullRequestId) !== room.key || seen.has(message.id)) return;
  seen.add(message.id);
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
});

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
socket.on("typing", (notice) => theirTyping(notice, true));
socket.on("stop-typing", (notice) => theirTyping(notice, false));

// ---- typing, ours -----------------------------------------------------------

let typingActive = false;
let typingSentAt = 0;
let idleTimer: ReturnType<typeof setTimeout> | undefined;

function keyPressed(): void {
  if (!room || !joined) return;
  if (!messageInput.value.trim()) return stopTyping();
  const now = Date.now();
  if (!typingActive || now - typingSentAt >= TYPING_EVERY_MS) {
    socket.emit(TYPING, room.ref);
    typingSentAt = now;
    typingActive = true;
  }
  clearTimeout(idleTimer);
  idleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping(): void {
  clearTimeout(idleTimer);
  if (typingActive && room && joined) socket.emit(STOP_TYPING, room.ref);
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
  socket.timeout(ACK_TIMEOUT_MS).emit(SEND, { ...target.ref, message: text }, (error, reply) => {
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

// ---- start ------------------------------------------------------------------

const query = new URLSearchParams(location.search);
prInput.value = query.get("pr") ?? "";
userInput.value = query.get("user") ?? "";
if (prInput.value && userInput.value && canonical(prInput.value) && userInput.value.trim()) {
  chooseRoom(prInput.value, userInput.value);
} else {
  (prInput.value ? userInput : prInput).focus();
}
setState(socket.connected ? "connected" : "connecting");
