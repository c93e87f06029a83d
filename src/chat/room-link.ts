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

type State = "opening" | "open" | "closed";

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

  /** Opens the link; resolves false if the room never accepted it. */
  async open(): Promise<boolean> {
    for (let attempt = 0; attempt <= REOPEN_BACKOFF_MS.length; attempt++) {
      if (this.state === "closed") return false;
      if (attempt > 0) await sleep(REOPEN_BACKOFF_MS[attempt - 1]!);
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
        opened.close(LinkClose.leave, "left");
        return false;
      }
      this.attach(opened);
      return true;
    }
    this.giveUp(UNREACHABLE);
    return false;
  }

  get closed(): boolean {
    return this.state === "closed";
  }

  /** Queues while opening; false when the queue is full or the link is gone. */
  send(command: LinkCommand): boolean {
    if (this.state === "closed") return false;
    if (this.state === "opening") {
      if (this.queue.length >= MAX_QUEUED_COMMANDS) return false;
      this.queue.push(command);
      return true;
    }
    this.transmit(command);
    return true;
  }

  /** Leaves the room: closing the link is the leave. */
  close(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.queue = [];
    try {
      this.ws?.close(LinkClose.leave, "leave");
    } catch {
      // Already closed.
    }
  }

  private attach(ws: WebSocket): void {
    ws.accept();
    this.ws = ws;
    this.state = "open";
    this.everOpened = true;
    ws.addEventListener("message", (event) => this.onFrame(event.data as string));
    ws.addEventListener("close", (event) => this.onDropped(ws, event.code));
    ws.addEventListener("error", () => this.onDropped(ws, 1006));
    const queued = this.queue;
    this.queue = [];
    for (const command of queued) this.transmit(command);
  }

  private transmit(command: LinkCommand): void {
    if (command.ack !== undefined) this.inFlight.push(command.ack);
    try {
      this.ws!.send(encodeCommand(command));
    } catch {
      this.onDropped(this.ws!, 1006);
    }
  }

  private onFrame(frame: string): void {
    if (this.state !== "open") return;
    // An ACK frame is `43<id>[...]`: read the id without parsing the JSON.
    if (frame.charCodeAt(0) === 52 && frame.charCodeAt(1) === 51) this.answered(ackIdOf(frame));
    this.events.frame(frame);
  }

  private answered(id: number): void {
    const index = this.inFlight.indexOf(id);
    if (index !== -1) this.inFlight.splice(index, 1);
  }

  private onDropped(ws: WebSocket, code: number): void {
    if (this.state === "closed" || ws !== this.ws) return;
    this.ws = undefined;
    // The room restarted: what it had not answered may or may not have gone out.
    this.flushUnanswered(RESTARTED);
    this.state = "opening";
    void this.open();
  }

  private giveUp(error: ErrorBody): void {
    if (this.state === "closed") return;
    this.state = "closed";
    for (const command of this.queue) if (command.ack !== undefined) this.inFlight.push(command.ack);
    this.queue = [];
    this.flushUnanswered(error);
    this.events.lost(error, this.everOpened);
  }

  private flushUnanswered(error: ErrorBody): void {
    if (this.inFlight.length === 0) return;
    this.events.unanswered(this.inFlight.splice(0), error);
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
