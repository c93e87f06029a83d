/**
 * PrRoom: one Durable Object per pull request, named `pr:<id>`. Each member is a
 * hibernatable link from a gateway session; who is behind it lives in the link's
 * attachment, so the room can sleep between messages and lose nothing.
 */
import { DurableObject } from "cloudflare:workers";
import { configOf, type Config } from "../config.js";
import {
  publicPullRequestId,
  ServerEvent,
  type ErrorBody,
  type JoinAck,
  type PrRoomMessage,
  type SendAck,
  type TypingAck,
  type TypingNotice,
} from "../events.js";
import { log } from "../log.js";
import { ackFrame, eventFrame } from "./frames.js";
import { decodeCommand, LinkClose, LinkIdentity, type LinkCommand } from "./link.js";

/** A member's state: the link's attachment. `typingUntil` is 0 when not typing. */
export interface Member extends LinkIdentity {
  typingUntil: number;
}

export class PrRoom extends DurableObject<Env> {
  /** Decoded attachments, so no message pays for deserialisation. Rebuilt after hibernation. */
  private readonly members = new Map<WebSocket, Member>();
  private readonly config: Config;
  private readonly pullRequestId: number | string;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.config = configOf(env);
    this.pullRequestId = publicPullRequestId((ctx.id.name ?? "").replace(/^pr:/, ""));
    for (const ws of ctx.getWebSockets()) {
      const member = ws.deserializeAttachment() as Member | null;
      if (member) this.members.set(ws, member);
    }
  }

  /** Accepts a link from a gateway session: `GET /link?sid&username` with Upgrade. */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    if (!this.ctx.id.name) return new Response("rooms are reached by name (pr:<id>)", { status: 400 });
    const url = new URL(request.url);
    const identity = LinkIdentity.safeParse(Object.fromEntries(url.searchParams));
    if (!identity.success) return new Response("bad link identity", { status: 400 });
    if (this.members.size >= this.config.MAX_MEMBERS_PER_ROOM) {
      const refusal: ErrorBody = {
        code: "room_full",
        message: `${this.ctx.id.name} is full (${this.config.MAX_MEMBERS_PER_ROOM} connections)`,
      };
      return Response.json(refusal, { status: 403 });
    }

    const { 0: gatewaySide, 1: roomSide } = new WebSocketPair();
    this.ctx.acceptWebSocket(roomSide);
    const member: Member = { sid: identity.data.sid, username: identity.data.username, typingUntil: 0 };
    roomSide.serializeAttachment(member);
    this.members.set(roomSide, member);
    return new Response(null, { status: 101, webSocket: gatewaySide });
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    const member = this.members.get(ws);
    const command = typeof data === "string" ? decodeCommand(data) : undefined;
    if (!member || !command) {
      // Only our gateway opens links, so this is a bug there: drop the link, not the room.
      ws.close(1002, "bad link command");
      return;
    }
    this.handle(ws, member, command);
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    this.remove(ws);
    try {
      ws.close(code === 1005 ? LinkClose.leave : code, "bye");
    } catch {
      // Already closed.
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.remove(ws);
  }

  /** Expires typists whose `typing` was neither renewed nor stopped in time. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    for (const [ws, member] of this.members) {
      if (member.typingUntil !== 0 && member.typingUntil <= now) this.stopTyping(ws, member);
    }
    await this.scheduleTypingExpiry();
  }

  private handle(ws: WebSocket, member: Member, command: LinkCommand): void {
    switch (command.t) {
      case "join": {
        if (command.ack === undefined) return;
        const ack: JoinAck = { ok: true, pullRequestId: this.pullRequestId, members: this.distinctUsers() };
        return this.send(ws, ackFrame(command.ack, ack));
      }
      case "msg": {
        if (member.typingUntil !== 0) this.stopTyping(ws, member);
        const payload: PrRoomMessage = {
          pullRequestId: this.pullRequestId,
          username: member.username,
          message: command.message,
          id: crypto.randomUUID(),
          sentAt: Date.now(),
        };
        this.broadcast(eventFrame(ServerEvent.message, payload));
        if (command.ack !== undefined) this.send(ws, ackFrame(command.ack, { ok: true, id: payload.id } satisfies SendAck));
        return;
      }
      case "typing": {
        const first = member.typingUntil === 0;
        this.setTyping(ws, member, Date.now() + this.config.TYPING_TIMEOUT_MS);
        this.broadcast(eventFrame(ServerEvent.typing, this.notice(member)), ws);
        if (first) this.scheduleTypingExpiry().catch((error) => log("handler_error", { where: "typing alarm", error: String(error) }));
        break;
      }
      case "stop-typing":
        if (member.typingUntil !== 0) this.stopTyping(ws, member);
        break;
    }
    if (command.ack !== undefined) this.send(ws, ackFrame(command.ack, { ok: true } satisfies TypingAck));
  }

  /** The one fan-out path: the same frame to every member but `without`. */
  private broadcast(frame: string, without?: WebSocket): void {
    for (const ws of this.members.keys()) {
      if (ws !== without) this.send(ws, frame);
    }
  }

  /** A member's broken link must not stop a broadcast to the rest. */
  private send(ws: WebSocket, frame: string): void {
    try {
      ws.send(frame);
    } catch {
      this.remove(ws);
    }
  }

  private remove(ws: WebSocket): void {
    const member = this.members.get(ws);
    if (!member) return;
    this.members.delete(ws);
    if (member.typingUntil !== 0) this.broadcast(eventFrame(ServerEvent.stopTyping, this.notice(member)));
  }

  private stopTyping(ws: WebSocket, member: Member): void {
    this.setTyping(ws, member, 0);
    this.broadcast(eventFrame(ServerEvent.stopTyping, this.notice(member)), ws);
  }

  private setTyping(ws: WebSocket, member: Member, until: number): void {
    member.typingUntil = until;
    ws.serializeAttachment(member);
  }

  /** One alarm for the earliest typing deadline; none when nobody types. */
  private async scheduleTypingExpiry(): Promise<void> {
    let earliest = Infinity;
    for (const member of this.members.values()) {
      if (member.typingUntil !== 0) earliest = Math.min(earliest, member.typingUntil);
    }
    if (earliest === Infinity) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(earliest);
  }

  private notice(member: Member): TypingNotice {
    return { pullRequestId: this.pullRequestId, username: member.username };
  }

  private distinctUsers(): number {
    return new Set(Array.from(this.members.values(), (member) => member.username)).size;
  }
}
