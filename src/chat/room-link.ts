/**
 * One client's link to one PrRoom: a WebSocket to the Durable Object. Commands sent
 * while it opens wait in order; frames from the room go to the client untouched.
 * If the room drops the link (evicted, restarted) it re-opens with backoff, and only
 * when that fails does it give up and say so.
 */
import type { ErrorBody } from "../events.js";
import { encodeCommand, LinkClose, type LinkCommand } from "../room/link.js";

export interface RoomLinkEvents {
  /** A finished Engine.IO frame from the room, for the client. */
  frame(frame: string): void;
  /** Ack ids the room will never answer, and why. */
  unanswered(ackIds: number[], error: ErrorBody): void;
  /** The link is gone for good: refused by the room, or unreachable. `everOpened` tells which side of the join. */
  lost(error: ErrorBody, everOpened: boolean): void;
}

/** Opens the WebSocket to the room. Resolves with the room's refusal (final), rejects when unreachable (retried). */
export type LinkOpener = () => Promise<WebSocket | { refused: ErrorBody }>;

const UNREACHABLE: ErrorBody = { code: "room_unavailable", message: "the room could not be reached; join it again" };
const RESTARTED: ErrorBody = {
  code: "room_unavailable",
  message: "the room restarted before confirming; it may not have been delivered",
};

/** Delays before each re-open attempt after the room dropped the link. */
export const REOPEN_BACKOFF_MS = [50, 250, 1000] as const;
/** Commands held while the link (re)opens; past this the client is told, not ignored. */
export const MAX_QUEUED_COMMANDS = 256;

/**
 * opening → open ⇄ opening (re-open) → closing (left; answers to its own acks still come) → closed.
 * Any state → closed when the room refuses or cannot be reached.
 */
type State = "opening" | "open" | "closing" | "closed";

const LEFT: ErrorBody = { code: "not_joined", message: "left the room before this reached it" };

export class RoomLink {
  private ws: WebSocket | undefined;
  private state: State = "opening";
  private queue: LinkCommand[] = [];
  /** Ack ids sent to the room and not yet answered, oldest first. */
  private readonly inFlight: number[] = [];
  private everOpened = false;

  constructor(
    readonly username: string,
    private readonly openSocket: LinkOpener,
    private readonly events: RoomLinkEvents,
  ) {}

  /** Left or lost: takes no more commands. */
  get closed(): boolean {
    return this.state === "closing" || this.state === "closed";
  }

  /** Opens the link, retrying with backoff; resolves false if the room never accepted it. */
  async open(): Promise<boolean> {
    for (let attempt = 0; attempt <= REOPEN_BACKOFF_MS.length; attempt++) {
      if (attempt > 0) await sleep(REOPEN_BACKOFF_MS[attempt - 1]!);
      if (this.closed) return false;
      let opened: Awaited<ReturnType<LinkOpener>>;
      try {
        opened = await this.openSocket();
      } catch {
        continue; // Unreachable for now: try again after the backoff.
      }
      if ("refused" in opened) {
        this.giveUp(opened.refused);
        return false;
      }
      if (this.closed) {
        // Left while the room was accepting: close what it accepted, or it keeps a ghost member.
        closeQuietly(opened, true);
        this.state = "closed";
        return false;
      }
      try {
        this.attach(opened);
        return true;
      } catch {
        closeQuietly(opened, false); // accept() failed: the end is unusable, try a fresh one
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
  close(): void {
    if (this.closed) return;
    this.answerQueued(LEFT);
    if (!this.ws) {
      this.state = "closed";
      return;
    }
    this.state = "closing";
    closeQuietly(this.ws, false);
  }

  private attach(ws: WebSocket): void {
    ws.accept();
    this.ws = ws;
    this.state = "open";
    this.everOpened = true;
    ws.addEventListener("message", (event) => this.onFrame(event.data as string));
    ws.addEventListener("close", () => this.onDropped(ws));
    ws.addEventListener("error", () => this.onDropped(ws));
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
    if (command.ack !== undefined) this.inFlight.push(command.ack);
    try {
      ws.send(encodeCommand(command));
    } catch {
      this.onDropped(ws);
    }
  }

  private onFrame(frame: string): void {
    // An ACK frame is `43<id>[...]`: read the id without parsing the JSON.
    const isAck = frame.charCodeAt(0) === 52 && frame.charCodeAt(1) === 51;
    if (this.state === "open") {
      if (isAck) this.answered(ackIdOf(frame));
      this.events.frame(frame);
    } else if (this.state === "closing" && isAck && this.answered(ackIdOf(frame))) {
      // After a leave only answers to the leaver's own earlier events go through.
      this.events.frame(frame);
    }
  }

  private answered(id: number): boolean {
    const index = this.inFlight.indexOf(id);
    if (index === -1) return false;
    this.inFlight.splice(index, 1);
    return true;
  }

  private onDropped(ws: WebSocket): void {
    if (ws !== this.ws) return;
    this.ws = undefined;
    if (this.state === "closing") {
      this.state = "closed";
      return this.flushUnanswered(LEFT);
    }
    if (this.state !== "open") return;
    // The room restarted: what it had not answered may or may not have gone out.
    this.flushUnanswered(RESTARTED);
    this.state = "opening";
    void this.open();
  }

  private giveUp(error: ErrorBody): void {
    if (this.state === "closed") return;
    const wasLeaving = this.state === "closing";
    this.state = "closed";
    this.answerQueued(error);
    this.flushUnanswered(error);
    if (!wasLeaving) this.events.lost(error, this.everOpened);
  }

  private answerQueued(error: ErrorBody): void {
    const ids = this.queue.flatMap((command) => (command.ack === undefined ? [] : [command.ack]));
    this.queue = [];
    if (ids.length > 0) this.events.unanswered(ids, error);
  }

  private flushUnanswered(error: ErrorBody): void {
    if (this.inFlight.length === 0) return;
    this.events.unanswered(this.inFlight.splice(0), error);
  }
}

/** Closes a link end; an end never accepted must be accepted first (workerd refuses otherwise). */
export function closeQuietly(ws: WebSocket, accept: boolean): void {
  try {
    if (accept) ws.accept();
    ws.close(LinkClose.leave, "leave");
  } catch {
    // Already closed.
  }
}

function ackIdOf(frame: string): number {
  let id = 0;
  for (let i = 2; i < frame.length; i++) {
    const digit = frame.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) break;
    id = id * 10 + digit;
  }
  return id;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
