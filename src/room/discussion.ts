/**
 * The discussion's record beyond sending: edits and deletes of one's own messages, reactions,
 * history pages, and the frames every room event goes out as, live and in a replay. Each
 * change is a room event in the log (`RoomLog.change`) with a seq of its own, so a recovered
 * client gets the changes it missed in order with the messages, and history shows the result.
 */
import {
  ServerEvent,
  type DeleteAck,
  type EditAck,
  type ErrorCode,
  type HistoryAck,
  type HistoryItem,
  type MessageDeleted,
  type MessageEdited,
  type MessageReactions,
  type PrRoomMessage,
  type ReactAck,
  type Refusal,
} from "../chat/events.js";
import { roomEventFrame } from "../chat/frames.js";
import { mentionsOf } from "../chat/mentions.js";
import { utf8Length } from "../session/backlog.js";
import type { ChangeKind, LogEntry, LoggedEvent, Reactions, RoomLog, StoredMessage } from "./log.js";

/** Distinct emoji one message may carry (too_many_reactions past it). */
export const MAX_EMOJI_PER_MESSAGE = 20;
/** A history page stops short of `limit` rather than grow past this (its answer is one frame). */
export const MAX_PAGE_BYTES = 512 * 1024;

export interface DiscussionRoom {
  key: string;
  pullRequestId: number | string;
  log: RoomLog;
}

/** What the room does with a change once it is logged: send its frame, and tell whoever listens (webhooks). */
export interface DiscussionHooks {
  broadcast(frame: string): void;
  changed?(kind: ChangeKind, message: StoredMessage, seq: number, at: number): void;
}

export class Discussion {
  constructor(
    private readonly room: DiscussionRoom,
    private readonly hooks: DiscussionHooks,
  ) {}

  /** A new message's frame. */
  messageFrame(entry: LogEntry): string {
    return this.frameFor(ServerEvent.message, this.messagePayload({ ...entry, version: 1, editedAt: null, deleted: false, reactions: {} }), entry.seq);
  }

  /**
   * A logged event's frame in a replay; undefined for what must not go out: a deleted message
   * and the changes to it (its delete goes), and a change to a message no longer kept.
   */
  replayFrame(event: LoggedEvent): string | undefined {
    if (event.kind === "delete") return this.deletedFrame(event.id, event.seq);
    const message = event.message;
    if (!message || message.deleted) return undefined;
    if (event.kind === "message") return this.frameFor(ServerEvent.message, this.messagePayload(message), event.seq);
    if (event.kind === "edit") return this.editedFrame(message, event.seq);
    return this.reactionsFrame(message, event.seq);
  }

  /** `username` edits their message `id` to `text`. */
  edit(username: string, id: string, text: string): EditAck | Refusal {
    const found = this.own(username, id);
    if ("ok" in found) return found;
    const message: StoredMessage = { ...found, message: text, version: found.version + 1, editedAt: Date.now() };
    const seq = this.room.log.change("edit", message, username, message.editedAt!);
    this.hooks.broadcast(this.editedFrame(message, seq));
    this.hooks.changed?.("edit", message, seq, message.editedAt!);
    return { ok: true, version: message.version };
  }

  /** `actor` deletes message `id`: their own, or any when `moderator` (the HTTP API's `moderate` scope). */
  remove(actor: string, id: string, moderator = false): DeleteAck | Refusal {
    const found = moderator ? this.existing(id) : this.own(actor, id);
    if ("ok" in found) return found;
    const at = Date.now();
    const seq = this.room.log.change("delete", found, actor, at);
    this.hooks.broadcast(this.deletedFrame(found.id, seq));
    this.hooks.changed?.("delete", found, seq, at);
    return { ok: true, id: found.id, seq };
  }

  /** `username` adds (`on`) or takes back a reaction to message `id`; each user counts once per emoji. */
  react(username: string, id: string, emoji: string, on: boolean): ReactAck | Refusal {
    const found = this.existing(id);
    if ("ok" in found) return found;
    const users = found.reactions[emoji] ?? [];
    if (users.includes(username) === on) return { ok: true, reactions: found.reactions };
    if (on && users.length === 0 && Object.keys(found.reactions).length >= MAX_EMOJI_PER_MESSAGE) {
      return refusal("too_many_reactions", `a message carries at most ${MAX_EMOJI_PER_MESSAGE} different emoji`);
    }
    const reactions: Reactions = { ...found.reactions };
    if (on) reactions[emoji] = [...users, username];
    else if (users.length > 1) reactions[emoji] = users.filter((user) => user !== username);
    else delete reactions[emoji];
    const message = { ...found, reactions };
    const at = Date.now();
    const seq = this.room.log.change("reactions", message, username, at);
    this.hooks.broadcast(this.reactionsFrame(message, seq));
    return { ok: true, reactions };
  }

  /** A page of history: at most `limit` messages just before `before`, oldest first. */
  history(before: number | undefined, limit: number): HistoryAck | Refusal {
    if (!this.room.log.history) return refusal("history_disabled", "this server keeps no history (HISTORY_RETENTION_DAYS is 0)");
    const page = this.room.log.page(before, limit);
    const items: HistoryItem[] = [];
    let bytes = 0;
    let hasMore = page.hasMore;
    // Newest first, so that a page cut short by size still ends just before `before`.
    for (const message of [...page.messages].reverse()) {
      const item = this.historyItem(message);
      bytes += utf8Length(JSON.stringify(item));
      if (bytes > MAX_PAGE_BYTES && items.length > 0) {
        hasMore = true;
        break;
      }
      items.push(item);
    }
    return { ok: true, messages: items.reverse(), hasMore };
  }

  private historyItem(message: StoredMessage): HistoryItem {
    if (message.deleted) return { id: message.id, seq: message.seq, deleted: true };
    const item: HistoryItem = this.messagePayload(message);
    if (Object.keys(message.reactions).length > 0) item.reactions = message.reactions;
    return item;
  }

  private messagePayload(message: StoredMessage): PrRoomMessage {
    const payload: PrRoomMessage = {
      pullRequestId: this.room.pullRequestId,
      username: message.username,
      message: message.message,
      id: message.id,
      seq: message.seq,
      sentAt: message.at,
      mentions: mentionsOf(message.message),
    };
    if (message.version > 1) Object.assign(payload, { version: message.version, editedAt: message.editedAt });
    return payload;
  }

  private editedFrame(message: StoredMessage, seq: number): string {
    const payload: MessageEdited = {
      pullRequestId: this.room.pullRequestId,
      id: message.id,
      seq,
      username: message.username,
      message: message.message,
      version: message.version,
      editedAt: message.editedAt!,
      mentions: mentionsOf(message.message),
    };
    return this.frameFor(ServerEvent.edited, payload, seq);
  }

  private deletedFrame(id: string, seq: number): string {
    return this.frameFor(ServerEvent.deleted, { pullRequestId: this.room.pullRequestId, id, seq } satisfies MessageDeleted, seq);
  }

  private reactionsFrame(message: StoredMessage, seq: number): string {
    const payload: MessageReactions = { pullRequestId: this.room.pullRequestId, id: message.id, seq, reactions: message.reactions };
    return this.frameFor(ServerEvent.reactions, payload, seq);
  }

  /** Every room event carries the room's offset (with recovery on), so a client's position moves with it. */
  private frameFor(event: Parameters<typeof roomEventFrame>[1], payload: unknown, seq: number): string {
    return roomEventFrame(this.room.key, event, payload, seq, this.room.log.recovers);
  }

  /** The message `id`, kept and not deleted; or not_found. */
  private existing(id: string): StoredMessage | Refusal {
    return this.room.log.find(id) ?? refusal("not_found", "no such message in this room (unknown, deleted, or no longer kept)");
  }

  /** The message `id` if `username` wrote it; or not_found, or not_author. */
  private own(username: string, id: string): StoredMessage | Refusal {
    const found = this.existing(id);
    if ("ok" in found || found.username === username) return found;
    return refusal("not_author", "only its author may change a message");
  }
}

function refusal(code: ErrorCode, message: string): Refusal {
  return { ok: false, error: { code, message } };
}
