/**
 * The chat page: one pull request room, over socket.io-client. It connects directly to
 * its room (`query: { pullRequestId }`: the room's object holds the socket; `?path=gateway`
 * connects as the API document's client does, and joins), shows who is here, and after a
 * reconnect either picks up exactly where it was (connection state recovery: the missed
 * messages arrive, once each) or says what could not be recovered. When the server keeps
 * history (HISTORY_RETENTION_DAYS), it also loads earlier messages, and offers editing and
 * deleting one's own messages and reacting to any; edits, deletes, reactions and mentions
 * are shown as they come either way.
 * Bundled with socket.io-client into public/app.js by scripts/build-web.mjs.
 *
 * User content only ever reaches the DOM through textContent.
 */
import { io } from "socket.io-client";
import { connectToPullRequest, type ChatSocket, type ClientPayload } from "../src/client.js";
import type {
  ClientEventName,
  HistoryItem,
  MessageDeleted,
  MessageEdited,
  MessageReactions,
  PresenceNotice,
  PrRoomError,
  PrRoomMessage,
  TypingNotice,
} from "../src/chat/events.js";

// Event names, checked against the server's contract. src/chat/events.ts is imported for types only (its
// values would bundle zod); of src/, only src/client.ts's connectToPullRequest (zod-free) is bundled.
const JOIN = "join-pr-room" satisfies ClientEventName;
const SEND = "send-message-to-pr-room" satisfies ClientEventName;
const LEAVE = "leave-pr-room" satisfies ClientEventName;
const TYPING = "typing" satisfies ClientEventName;
const STOP_TYPING = "stop-typing" satisfies ClientEventName;
const USERS = "get-pr-room-users" satisfies ClientEventName;
const HISTORY = "get-pr-room-history" satisfies ClientEventName;
const EDIT = "edit-pr-room-message" satisfies ClientEventName;
const DELETE = "delete-pr-room-message" satisfies ClientEventName;
const REACT = "react-to-pr-room-message" satisfies ClientEventName;

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
/** Messages per "load earlier". */
const HISTORY_PAGE = 30;
/** The reaction picker's choice (any one emoji is accepted by the server). */
const PICKER_EMOJI = ["👍", "👎", "😄", "🎉", "❤️", "👀"];

type RoomRefOut = ClientPayload<typeof JOIN>;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const titleEl = $<HTMLHeadingElement>("title");
const statusEl = $<HTMLParagraphElement>("status");
const reconnectButton = $<HTMLButtonElement>("reconnect");
const roomForm = $<HTMLFormElement>("room");
const prInput = $<HTMLInputElement>("pr");
const userInput = $<HTMLInputElement>("user");
const logEl = $<HTMLElement>("log");
const earlierButton = $<HTMLButtonElement>("earlier");
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
/** `?path=gateway`: connect naming no pull request, as the API document's client does (the Worker holds the socket). */
const gateway = query.get("path") === "gateway";

/**
 * A socket for one room: the URL names the pull request, so the room's own object holds
 * the connection (the direct path), unless `?path=gateway`. A different room is a different connection.
 */
function connect(key: string): ChatSocket {
  // Typed from the server's own schemas (src/client.ts): a wrong payload does not compile.
  const options = { transports, forceNew: true, ...(token ? { auth: { token } } : {}) };
  const next: ChatSocket = gateway ? io(location.origin, options) : connectToPullRequest(location.origin, key, options);
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
  s.on("pr-room-message-edited", (edit) => current() && messageEdited(edit));
  s.on("pr-room-message-deleted", (notice) => current() && messageDeleted(notice));
  s.on("pr-room-message-reactions", (notice) => current() && reactionsChanged(notice));
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
  shown.clear();
  editing = null;
  confirming = null;
  loadingEarlier = false;
  setHistory("");
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
    probeHistory(target);
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

/** A message on screen: what it says now, and its element. */
interface Shown {
  item: HTMLLIElement;
  id: string;
  username: string;
  text: string;
  mentions: string[];
  version: number;
  reactions: Record<string, string[]>;
  deleted: boolean;
}

/** The messages on screen by id: a page never shows one twice. */
const shown = new Map<string, Shown>();
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

function button(className: string, text: string, onClick: () => void, label = ""): HTMLButtonElement {
  const node = el("button", className, text);
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  node.addEventListener("click", onClick);
  return node;
}

const me = () => room?.ref.username ?? "";

/** Says where the list has a hole: messages the room sent while this page was away, not recovered. */
function showGap(count: number): void {
  // Seqs count every room event: messages, and edits, deletes and reactions to them.
  const note = el("li", "gap", `${count} message${count === 1 ? "" : "s"} or change${count === 1 ? "" : "s"} made while you were disconnected could not be recovered.`);
  note.setAttribute("role", "note");
  // It stands just after the last seq seen: "load earlier" loads what came before it, above it.
  note.dataset.seq = String(lastSeq + 1);
  list.append(note);
}

function showMessage(message: PrRoomMessage): void {
  // Dedupe by id: a recovery replays only what was missed, but a page never shows anything twice.
  if (!room || canonical(message.pullRequestId) !== room.key || shown.has(message.id)) return;
  lastSeq = Math.max(lastSeq, message.seq);
  typists.delete(message.username);
  renderTyping();

  const own = message.username === me();
  const atBottom = logEl.scrollHeight - logEl.scrollTop - logEl.clientHeight < 48;
  list.append(messageItem(message));
  while (list.childElementCount > MAX_MESSAGES) {
    const first = list.firstElementChild as HTMLElement;
    shown.delete(first.dataset.id ?? "");
    first.remove();
    // What was dropped can be loaded again.
    if (historyOn()) earlierButton.hidden = false;
  }
  if (atBottom || own) logEl.scrollTop = logEl.scrollHeight;
}

/** A message's element, as it is now (a history item may be edited, deleted, reacted to). */
function messageItem(message: PrRoomMessage | HistoryItem): HTMLLIElement {
  const item = el("li", "", "");
  item.dataset.id = message.id;
  item.dataset.seq = String(message.seq);
  const entry: Shown = { item, id: message.id, username: "", text: "", mentions: [], version: 1, reactions: {}, deleted: true };
  shown.set(message.id, entry);
  if ("deleted" in message) {
    showDeleted(entry);
    return item;
  }
  Object.assign(entry, { username: message.username, text: message.message, mentions: message.mentions, version: message.version ?? 1, deleted: false });
  entry.reactions = ("reactions" in message && message.reactions) || {};
  const own = message.username === me();
  item.classList.toggle("own", own);
  const sentAt = new Date(message.sentAt);
  const time = el("time", "", timeFormat.format(sentAt));
  time.dateTime = sentAt.toISOString();
  time.title = sentAt.toLocaleString();
  // Controls that change the stored message; shown only when the room keeps history (see index.html).
  const actions = el("span", "actions", "");
  actions.append(button("react-add", "React", () => togglePicker(entry), "Add a reaction"));
  if (own) actions.append(button("edit", "Edit", () => startEdit(entry)), button("delete", "Delete", () => askDelete(entry)));
  item.append(el("span", "who", message.username), ": ", el("span", "text", ""), el("span", "edited", "(edited)"), " ", time, actions, el("div", "reactions", ""));
  renderText(entry);
  renderReactions(entry);
  return item;
}

// Who a message addresses, as the server reads it (src/chat/mentions.ts): `@name` after anything but a letter or digit.
const MENTION = /(?<![\p{L}\p{N}])@([\p{L}\p{N}_.-]+)/gu;
const sameName = (a: string, b: string) => a.normalize("NFC").toLowerCase() === b.normalize("NFC").toLowerCase();
const mentionsIn = (text: string) => [...new Set([...text.matchAll(MENTION)].map((match) => (match[1] ?? "").replace(/\.+$/, "")).filter(Boolean))];

/** The message's text with its mentions (the server's `mentions`, found in the text) highlighted; yours more. */
function renderText(entry: Shown): void {
  const nodes: Array<Node | string> = [];
  let end = 0;
  for (const match of entry.text.matchAll(MENTION)) {
    const name = (match[1] ?? "").replace(/\.+$/, "");
    if (!name || !entry.mentions.includes(name)) continue;
    nodes.push(entry.text.slice(end, match.index));
    end = match.index + 1 + name.length;
    nodes.push(el("span", sameName(name, me()) ? "mention me" : "mention", entry.text.slice(match.index, end)));
  }
  nodes.push(entry.text.slice(end));
  const item = entry.item;
  item.querySelector(".text")?.replaceChildren(...nodes);
  const edited = item.querySelector<HTMLElement>(".edited");
  if (edited) edited.hidden = entry.version <= 1;
  item.classList.toggle("mentions-me", entry.username !== me() && entry.mentions.some((name) => sameName(name, me())));
}

/** Reactions under the message: emoji and count, yours pressed; a click takes yours back or adds it. */
function renderReactions(entry: Shown): void {
  const chips = Object.entries(entry.reactions).map(([emoji, users]) => {
    const mine = users.includes(me());
    const chip = button(mine ? "reaction mine" : "reaction", `${emoji} ${users.length}`, () => react(entry, emoji, !mine));
    chip.dataset.emoji = emoji;
    chip.title = users.join(", ");
    chip.setAttribute("aria-pressed", String(mine));
    return chip;
  });
  entry.item.querySelector(".reactions")?.replaceChildren(...chips);
}

function showDeleted(entry: Shown): void {
  if (editing?.entry === entry) editing = null;
  if (confirming?.entry === entry) confirming = null;
  entry.deleted = true;
  entry.reactions = {};
  entry.item.className = entry.username && entry.username === me() ? "own deleted" : "deleted";
  entry.item.replaceChildren(el("span", "tombstone", "message deleted"));
}

function messageEdited(edit: MessageEdited): void {
  if (!room || canonical(edit.pullRequestId) !== room.key) return;
  lastSeq = Math.max(lastSeq, edit.seq);
  const entry = shown.get(edit.id);
  // An older version than shown (this page's own edit, shown from its ack) changes nothing.
  if (!entry || entry.deleted || edit.version < entry.version) return;
  Object.assign(entry, { text: edit.message, version: edit.version, mentions: edit.mentions });
  renderText(entry);
}

function messageDeleted(notice: MessageDeleted): void {
  if (!room || canonical(notice.pullRequestId) !== room.key) return;
  lastSeq = Math.max(lastSeq, notice.seq);
  const entry = shown.get(notice.id);
  if (entry && !entry.deleted) showDeleted(entry);
}

function reactionsChanged(notice: MessageReactions): void {
  if (!room || canonical(notice.pullRequestId) !== room.key) return;
  lastSeq = Math.max(lastSeq, notice.seq);
  const entry = shown.get(notice.id);
  if (!entry || entry.deleted) return;
  entry.reactions = notice.reactions;
  renderReactions(entry);
}

/** An answer that says no, or none in time: shown as the page shows every refusal. */
function refused(what: string, error: Error | null, reply: { ok: true } | { ok: false; error: { code: string; message: string } } | undefined): boolean {
  if (!error && reply?.ok) return false;
  if (error || !reply || reply.ok) showAlert(`${what}: the server did not answer in time.`, "timeout");
  else showAlert(`${what}: ${reply.error.message}`, reply.error.code);
  return true;
}

// ---- history ----------------------------------------------------------------

let loadingEarlier = false;

/** "on", "off", or "" while not known: the page asks after every join. */
function setHistory(state: "on" | "off" | ""): void {
  document.documentElement.dataset.history = state;
  if (state !== "on") earlierButton.hidden = true;
}
const historyOn = () => document.documentElement.dataset.history === "on";

/** The oldest seq on screen (a message, or a gap's place), or just after the newest seq known. */
function oldestSeq(): number {
  const first = list.querySelector<HTMLElement>("li[data-seq]");
  return first ? Number(first.dataset.seq) : lastSeq + 1;
}

/** Asks for one message before the oldest shown: the answer says whether history is on, and whether there is more. */
function probeHistory(target: Room): void {
  socket.timeout(ACK_TIMEOUT_MS).emit(HISTORY, { pullRequestId: target.ref.pullRequestId, before: oldestSeq(), limit: 1 }, (error, reply) => {
    // No answer, or another refusal (rate_limited): what is known stays.
    if (room !== target || error) return;
    if (!reply.ok) return reply.error.code === "history_disabled" ? setHistory("off") : undefined;
    setHistory("on");
    earlierButton.hidden = reply.messages.length === 0;
  });
}

earlierButton.addEventListener("click", () => {
  if (!room || !joined || loadingEarlier) return;
  const target = room;
  loadingEarlier = true;
  earlierButton.disabled = true;
  earlierButton.textContent = "Loading…";
  socket.timeout(ACK_TIMEOUT_MS).emit(HISTORY, { pullRequestId: target.ref.pullRequestId, before: oldestSeq(), limit: HISTORY_PAGE }, (error, reply) => {
    if (room !== target) return;
    loadingEarlier = false;
    earlierButton.disabled = false;
    earlierButton.textContent = "Load earlier messages";
    if (refused("Could not load earlier messages", error, reply) || !reply.ok) return;
    showAlert("");
    showEarlier(reply.messages);
    earlierButton.hidden = !reply.hasMore;
  });
});

/** A page of history (oldest first, all before what is shown) above the list, keeping the view where it was. */
function showEarlier(messages: HistoryItem[]): void {
  const items = messages.filter((message) => !shown.has(message.id)).map(messageItem);
  const fromBottom = logEl.scrollHeight - logEl.scrollTop;
  list.prepend(...items);
  logEl.scrollTop = logEl.scrollHeight - fromBottom;
}

// ---- editing, deleting, reacting -------------------------------------------

/** The one message being edited, or confirmed for deletion, at a time. */
let editing: { entry: Shown; form: HTMLFormElement } | null = null;
let confirming: { entry: Shown; box: HTMLElement } | null = null;

function startEdit(entry: Shown): void {
  cancelEdit();
  cancelDelete();
  if (!room || entry.deleted) return;
  const form = el("form", "editor", "");
  const input = el("textarea", "", entry.text);
  input.setAttribute("aria-label", "Edit message");
  input.rows = Math.min(6, Math.max(2, entry.text.split("\n").length));
  form.append(input, el("span", "hint", "Enter to save · Esc to cancel"));
  const current = { entry, form };
  editing = current;
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") cancelEdit();
    else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text === entry.text) return cancelEdit();
    const target = room;
    if (!target || input.disabled) return;
    input.disabled = true;
    socket.timeout(ACK_TIMEOUT_MS).emit(EDIT, { pullRequestId: target.ref.pullRequestId, id: entry.id, message: text }, (error, reply) => {
      if (room !== target || editing !== current) return;
      input.disabled = false;
      if (refused("Not edited", error, reply) || !reply.ok) return input.focus();
      showAlert("");
      cancelEdit();
      // Shown now; the room's pr-room-message-edited (the same version) follows, with the server's mentions.
      if (!entry.deleted && reply.version > entry.version) {
        Object.assign(entry, { text, version: reply.version, mentions: mentionsIn(text) });
        renderText(entry);
      }
    });
  });
  entry.item.classList.add("editing");
  entry.item.querySelector(".actions")?.before(form);
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

function cancelEdit(): void {
  if (!editing) return;
  editing.form.remove();
  editing.entry.item.classList.remove("editing");
  editing = null;
}

function askDelete(entry: Shown): void {
  cancelEdit();
  cancelDelete();
  const box = el("span", "confirm", "Delete this message? ");
  box.setAttribute("role", "group");
  const current = { entry, box };
  const yes = button("confirm-delete", "Delete", () => {
    const target = room;
    if (!target) return;
    yes.disabled = true;
    socket.timeout(ACK_TIMEOUT_MS).emit(DELETE, { pullRequestId: target.ref.pullRequestId, id: entry.id }, (error, reply) => {
      if (room !== target) return;
      if (confirming === current) cancelDelete();
      if (refused("Not deleted", error, reply)) return;
      showAlert("");
      if (!entry.deleted) showDeleted(entry);
    });
  });
  const no = button("cancel", "Cancel", cancelDelete);
  box.append(yes, " ", no);
  box.addEventListener("keydown", (event) => event.key === "Escape" && cancelDelete());
  confirming = current;
  entry.item.classList.add("confirming");
  entry.item.querySelector(".actions")?.after(box);
  no.focus();
}

function cancelDelete(): void {
  if (!confirming) return;
  confirming.box.remove();
  confirming.entry.item.classList.remove("confirming");
  confirming = null;
}

function togglePicker(entry: Shown): void {
  const open = entry.item.querySelector(".picker");
  document.querySelectorAll(".picker").forEach((picker) => picker.remove());
  if (open || entry.deleted) return;
  const picker = el("span", "picker", "");
  picker.setAttribute("role", "group");
  picker.setAttribute("aria-label", "Pick a reaction");
  for (const emoji of PICKER_EMOJI) {
    picker.append(
      button("pick", emoji, () => {
        picker.remove();
        react(entry, emoji, !(entry.reactions[emoji] ?? []).includes(me()));
      }, `React with ${emoji}`),
    );
  }
  entry.item.querySelector(".reactions")?.before(picker);
}

/** Adds (`on`) or takes back your reaction; the room's pr-room-message-reactions redraws it, here too. */
function react(entry: Shown, emoji: string, on: boolean): void {
  const target = room;
  if (!target || entry.deleted) return;
  socket.timeout(ACK_TIMEOUT_MS).emit(REACT, { pullRequestId: target.ref.pullRequestId, id: entry.id, emoji, on }, (error, reply) => {
    if (room === target && !refused("Reaction not saved", error, reply)) showAlert("");
  });
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
