/**
 * One client's link to one PrRoom: a WebSocket to the Durable Object. Commands sent
 * while it opens wait in order; frames from the room go to the client untouched.
 * If the room drops the link (evicted, restarted) it re-opens and resumes from the last
 * message it forwarded, so nothing said meanwhile is lost; only when the room cannot be
 * reached again does it give up and say so.
 */
import type { ErrorBody } from "../chat/events.js";
import { ackIdOf, isAckFrame } from "../protocol/sniff.js";
import { MESSAGE_FRAME_PREFIX, offsetOf } from "../chat/offset.js";
import { encodeCommand, LinkClose, type LinkCommand } from "../chat/link.js";
import type { JoinedRoom } from "../chat/chat.js";
import { closeQuietly, FinalLinkError, LINK_TIMING, type LinkOpener, type LinkTiming } from "./link-socket.js";

export interface RoomLinkEvents {
  /** A finished Engine.IO frame from the room, for the client; `seq` when it is a message. */
  frame(frame: string, seq: number | undefined): void;
  /** Ack ids the room will never answer, and why. */
  unanswered(ackIds: number[], error: ErrorBody): void;
  /** The room took the link (first time or again). */
  opened?(): void;
  /** The link is gone for good: refused by the room, unreachable, or taken over. `everOpened` tells which side of the join. */
  failed(error: ErrorBody, everOpened: boolean): void;
  /** The client left the room (or went away) and the link is closing. */
  left?(): void;
  /**
   * The room could not replay what the client missed and took it back fresh: `lost` messages
   * (undefined when the count is unknown) will never reach it. Newer ones flow again.
   */
  gap?(lost: number | undefined): void;
  /** Nothing more will come from the link: its owner can let go of it. */
  finished?(): void;
  /** A command went down the link: an incoming WebSocket message the room is billed for. */
  transmitted?(): void;
}

const UNREACHABLE: ErrorBody = { code: "room_unavailable", message: "the room could not be reached; join it again" };
const RESTARTED: ErrorBody = {
  code: "room_unavailable",
  message: "the room restarted before confirming; it may not have been delivered",
};
const TIMED_OUT: ErrorBody = {
  code: "room_unavailable",
  message: "the room did not answer in time; it may not have been delivered",
};
const SUPERSEDED: ErrorBody = { code: "room_unavailable", message: "this connection was resumed by another one" };
const LEFT: ErrorBody = { code: "not_joined", message: "left the room before this reached it" };

/** Commands held while the link (re)opens; past this the client is told, not ignored. */
export const MAX_QUEUED_COMMANDS = 256;

/**
 * opening → open ⇄ opening (re-open) → closing (left; answers to its own acks still come) → closed.
 * Any state → closed when the room refuses or cannot be reached.
 */
type State = "opening" | "open" | "closing" | "closed";

export class RoomLink implements JoinedRoom {
  private ws: WebSocket | undefined;
  private state: State = "opening";
  private queue: LinkCommand[] = [];
  /** Ack ids sent to the room and not yet answered, oldest first, with when they went. */
  private readonly inFlight: Array<{ id: number; at: number }> = [];
  private watchdog: ReturnType<typeof setTimeout> | null = null;
  private everOpened = false;
  /** The room handed this member to another connection (a recovery elsewhere). */
  superseded = false;
  /** After a leave: the last message frame, in case the ack that follows it is for the leaver's own message. */
  private lastMessage: string | undefined;
  /** The seq of the last message forwarded (or the room's head at the join): where a re-opened link resumes. */
  position: number | undefined;
  /** How the link is being closed: leave (on purpose) or gone (the client went; recoverable). */
  private closeCode: (typeof LinkClose)["leave" | "gone"] = LinkClose.leave;

  private readonly timing: LinkTiming;

  constructor(
    readonly username: string,
    private readonly openSocket: LinkOpener,
    private readonly events: RoomLinkEvents,
    /** Whether the room keeps a log to resume from (recovery on). */
    private readonly resumable: boolean,
    timing: Partial<LinkTiming> = {},
  ) {
    this.timing = { ...LINK_TIMING, ...timing };
  }

  /** Left or lost: takes no more commands. */
  get closed(): boolean {
    return this.state === "closing" || this.state === "closed";
  }

  /** Gone for good, nothing more will come from it. */
  get finished(): boolean {
    return this.state === "closed";
  }

  /** In the room: open, or re-opening after the room dropped it (a hand-over resumes it from its position). */
  get inRoom(): boolean {
    return this.everOpened && (this.state === "open" || this.state === "opening");
  }

  /** Nothing waits to be sent to the room, and every command sent has its answer. */
  get settled(): boolean {
    return this.queue.length === 0 && this.inFlight.length === 0;
  }

  /**
   * Stops waiting for answers (a hand-over past its wait): each command still due, sent or
   * not, is answered `error` now, and an answer the room gives later is dropped.
   */
  giveUpAnswers(error: ErrorBody): void {
    this.answerQueued(error);
    this.flushUnanswered(error);
    this.stopWatchdog();
  }

  /**
   * Opens the link, retrying with full jitter while the room is unreachable; resolves
   * false if it never accepted. `resumeFrom` resumes a member the room already knows.
   */
  async open(resumeFrom?: string): Promise<boolean> {
    let refusedResume = false;
    const { attempts, backoffBaseMs, backoffCapMs } = this.timing;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await sleep(Math.random() * Math.min(backoffCapMs, backoffBaseMs * 2 ** attempt));
      if (this.closed) return false;
      let opened: Awaited<ReturnType<LinkOpener>>;
      try {
        opened = await this.openSocket(refusedResume ? undefined : resumeFrom);
      } catch (error) {
        if (error instanceof FinalLinkError) break;
        continue; // Unreachable for now: try again after a random delay.
      }
      if ("refused" in opened) {
        // A room that cannot replay what was missed takes the member back fresh (only with
        // recovery off, or after a gap longer than its window): newer messages still flow.
        if (opened.refused.code === "not_recoverable" && resumeFrom !== undefined && !refusedResume && this.everOpened) {
          refusedResume = true;
          attempt--;
          continue;
        }
        this.giveUp(opened.refused.code === "not_recoverable" ? UNREACHABLE : (opened.refused as ErrorBody));
        return false;
      }
      if (this.closed) {
        // Left while the room was accepting: close what it accepted, or it keeps a ghost member.
        closeQuietly(opened.ws, true, this.closeCode);
        this.finish();
        return false;
      }
      // Taken back fresh after the room refused the resume: what came in between is gone.
      const lost = refusedResume && this.position !== undefined && opened.head !== undefined ? Math.max(0, opened.head - this.position) : undefined;
      // A fresh join (or one after a refused resume): the client is at the room's head now, so a
      // later resume starts there, exactly as "since the join" would.
      if ((resumeFrom === undefined || refusedResume) && this.resumable && opened.head !== undefined) {
        this.position = refusedResume ? opened.head : (this.position ?? opened.head);
      }
      try {
        this.attach(opened.ws);
        if (refusedResume) this.events.gap?.(lost);
        return true;
      } catch {
        closeQuietly(opened.ws, false, LinkClose.gone); // accept() failed: the end is unusable, try a fresh one
      }
    }
    this.giveUp(UNREACHABLE);
    return false;
  }

  /** Queues while opening; false when the queue is full or the link is gone. */
  send(command: LinkCommand): boolean {
    if (this.closed) return false;
    if (this.state === "opening" || !this.ws) {
      if (this.queue.length >= MAX_QUEUED_COMMANDS) return false;
      this.queue.push(command);
      return true;
    }
    this.transmit(this.ws, command);
    return true;
  }

  /**
   * Leaves the room: closing the link is the leave. Commands never sent are answered
   * `not_joined`; acks for commands already sent still come back until the room closes.
   */
  leave(): void {
    this.close(LinkClose.leave);
  }

  /** The client went away: the link closes as `gone`, so the room keeps the member recoverable. */
  depart(): void {
    this.close(LinkClose.gone);
  }

  private close(code: (typeof LinkClose)["leave" | "gone"]): void {
    if (this.closed) return;
    this.answerQueued(LEFT);
    if (code === LinkClose.leave) this.events.left?.();
    this.closeCode = code;
    if (!this.ws) {
      this.finish();
      this.stopWatchdog();
      return;
    }
    this.state = "closing";
    const ws = this.ws;
    closeQuietly(ws, false, code);
    // A room that never completes the close must not keep the link (and its owner's count) forever.
    setTimeout(() => {
      if (this.state !== "closing" || this.ws !== ws) return;
      this.ws = undefined;
      this.finish();
      this.flushUnanswered(LEFT);
    }, this.timing.commandTimeoutMs);
  }

  /** Closed for good: told once. */
  private finish(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.events.finished?.();
  }

  private attach(ws: WebSocket): void {
    ws.accept();
    this.ws = ws;
    this.state = "open";
    this.everOpened = true;
    // Frames a replaced socket still delivers are dropped: the resume replays them in order.
    ws.addEventListener("message", (event) => {
      if (ws === this.ws) this.onFrame(event.data as string);
    });
    ws.addEventListener("close", (event) => {
      this.onDropped(ws, event.code);
    });
    ws.addEventListener("error", () => {
      this.onDropped(ws);
    });
    this.events.opened?.();
    const queued = this.queue;
    this.queue = [];
    for (const [index, command] of queued.entries()) {
      if (this.ws !== ws || this.state !== "open") {
        // Dropped mid-flush: keep the rest, in order, for the next link.
        this.queue.unshift(...queued.slice(index));
        return;
      }
      this.transmit(ws, command);
    }
  }

  private transmit(ws: WebSocket, command: LinkCommand): void {
    if (command.ack !== undefined) {
      this.inFlight.push({ id: command.ack, at: Date.now() });
      this.startWatchdog();
    }
    try {
      ws.send(encodeCommand(command));
      this.events.transmitted?.();
    } catch {
      this.onDropped(ws);
    }
  }

  private onFrame(frame: string): void {
    const isAck = isAckFrame(frame);
    if (this.state === "open") {
      if (isAck) {
        this.answered(ackIdOf(frame));
        return this.events.frame(frame, undefined);
      }
      const seq = this.seqOf(frame);
      if (seq === undefined) return this.events.frame(frame, undefined);
      this.position = seq;
      return this.events.frame(frame, seq);
    }
    if (this.state !== "closing") return;
    // After a leave only answers to the leaver's own earlier events go through, and a message
    // it sent and got `ok` for: the room broadcasts it just before that answer, on this link.
    if (!isAck) {
      this.lastMessage = frame.startsWith(MESSAGE_FRAME_PREFIX) ? frame : undefined;
      return;
    }
    if (!this.answered(ackIdOf(frame))) return;
    const own = this.lastMessage;
    this.lastMessage = undefined;
    if (own !== undefined && isAnswerTo(frame, own)) this.events.frame(own, this.seqOf(own));
    this.events.frame(frame, undefined);
  }

  /** The seq a message frame carries in its offset argument ("<room>:<seq>"), with recovery on. */
  private seqOf(frame: string): number | undefined {
    if (!this.resumable) return undefined;
    const offset = offsetOf(frame);
    return offset === undefined ? undefined : Number(offset.slice(offset.indexOf(":") + 1));
  }

  private answered(id: number): boolean {
    const index = this.inFlight.findIndex((entry) => entry.id === id);
    if (index === -1) return false;
    this.inFlight.splice(index, 1);
    // The watchdog is left to lapse: re-arming it per command would cost a timer per message.
    return true;
  }

  private onDropped(ws: WebSocket, code?: number): void {
    if (ws !== this.ws) return;
    this.ws = undefined;
    if (this.state === "closing") {
      this.finish();
      this.stopWatchdog();
      return this.flushUnanswered(LEFT);
    }
    if (this.state !== "open") return;
    if (code === LinkClose.superseded) {
      this.superseded = true;
      return this.giveUp(SUPERSEDED);
    }
    // The room restarted: what it had not answered may or may not have gone out.
    this.flushUnanswered(RESTARTED);
    this.state = "opening";
    void this.open(this.resumable ? String(this.position ?? "") : undefined);
  }

  private giveUp(error: ErrorBody): void {
    if (this.state === "closed") return;
    const wasLeaving = this.state === "closing";
    this.state = "closed";
    this.stopWatchdog();
    this.answerQueued(error);
    this.flushUnanswered(error);
    if (this.ws) closeQuietly(this.ws, false, LinkClose.leave);
    this.ws = undefined;
    if (!wasLeaving) this.events.failed(error, this.everOpened);
    this.events.finished?.();
  }

  private answerQueued(error: ErrorBody): void {
    const ids = this.queue.flatMap((command) => (command.ack === undefined ? [] : [command.ack]));
    this.queue = [];
    if (ids.length > 0) this.events.unanswered(ids, error);
  }

  private flushUnanswered(error: ErrorBody): void {
    if (this.inFlight.length === 0) return;
    this.events.unanswered(this.inFlight.splice(0).map((entry) => entry.id), error);
  }

  /** While commands await answers, checks that the room still gives them; it lapses once none do. */
  private startWatchdog(): void {
    if (this.watchdog !== null) return;
    this.watchdog = setTimeout(() => {
      this.watchdog = null;
      const oldest = this.inFlight[0];
      if (!oldest) return;
      const late = Date.now() - oldest.at;
      if (late < this.timing.commandTimeoutMs) return this.startWatchdog();
      // A room that stopped answering without closing: answer for it, and replace the link.
      this.replace(TIMED_OUT);
    }, this.timing.commandTimeoutMs / 2);
  }

  /**
   * Gives up on the open socket and resumes on a new one from the last message forwarded:
   * what the room had not answered is answered `error`. The old socket closes as `gone`,
   * never `leave`, so the room keeps the member for the resume. Frames it still delivers
   * are dropped (they come again in the resume's replay).
   */
  replace(error: ErrorBody = TIMED_OUT): boolean {
    const ws = this.ws;
    if (!ws || this.state !== "open") return false;
    this.flushUnanswered(error);
    closeQuietly(ws, false, LinkClose.gone);
    this.onDropped(ws);
    return true;
  }

  private stopWatchdog(): void {
    clearTimeout(this.watchdog);
    this.watchdog = null;
  }
}

/** Whether `ack` answers a send whose message is `message` (same id: a resend of an old one is not). */
function isAnswerTo(ack: string, message: string): boolean {
  const id = /"id":"([^"]+)"/.exec(ack)?.[1];
  return id !== undefined && message.includes(`"id":"${id}"`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
