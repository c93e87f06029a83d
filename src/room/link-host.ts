/**
 * The room's side of gateway links: one hibernatable WebSocket per (gateway connection,
 * room). It accepts a link once Membership lets its member in, runs the commands the
 * gateway sends down it, and takes the member out when it closes: "left" when the gateway
 * closed it with the leave code, "gone" (recoverable) otherwise. Who is behind a link lives
 * in its attachment, so it is rebuilt after the room slept.
 */
import { decodeCommand, HEAD_HEADER, LinkClose, LinkIdentity, type LinkRefusal } from "../chat/link.js";
import { CloseCode } from "../session/types.js";
import type { Member, Participant } from "./member.js";
import type { Membership } from "./membership.js";

/** A gateway link's attachment. */
interface LinkAttachment {
  kind: "link";
  member: Member;
}

export class LinkHost {
  private readonly links = new Map<WebSocket, LinkParticipant>();

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly membership: Membership,
    /** The room's last seq, which the gateway learns on the 101 (HEAD_HEADER). */
    private readonly head: () => number,
  ) {}

  /** A gateway's `/link?…` upgrade: 101 with the member in, 403 with why not, 400 for a malformed identity. */
  accept(url: URL): Response {
    const parsed = LinkIdentity.safeParse(Object.fromEntries(url.searchParams));
    if (!parsed.success) return new Response("bad link identity", { status: 400 });
    const { sid, socketId, username, resume, budget } = parsed.data;
    const member: Member = { sid, socketId, username, typingUntil: 0 };
    const plan =
      resume === undefined ? this.membership.planJoin(member) : this.membership.planResume(member, resume === "" ? undefined : Number(resume), budget);
    if ("refused" in plan) return Response.json(plan.refused satisfies LinkRefusal, { status: 403 });

    const { 0: gatewaySide, 1: roomSide } = new WebSocketPair();
    this.ctx.acceptWebSocket(roomSide, ["link"]);
    const link = new LinkParticipant(roomSide, member, (ws) => this.links.delete(ws));
    this.links.set(roomSide, link);
    this.membership.enter(link, member, plan);
    return new Response(null, { status: 101, webSocket: gatewaySide, headers: { [HEAD_HEADER]: String(this.head()) } });
  }

  /** A frame on a socket that is not a direct client's: a command on a link. */
  message(ws: WebSocket, data: string | ArrayBuffer): void {
    const link = this.links.get(ws);
    const command = typeof data === "string" ? decodeCommand(data) : undefined;
    if (!link?.member || !command) {
      // Only our gateway opens links, so this is a bug there: drop the link (its close takes the member out), not the room.
      try {
        ws.close(CloseCode.protocolError, "bad link command");
      } catch {
        // Closed already.
      }
      return;
    }
    this.membership.command(link, command);
  }

  /** `ws` closed: if it is a link, its member left (the leave code) or went (recoverably). */
  closed(ws: WebSocket, code?: number): void {
    const link = this.links.get(ws);
    if (!link) return;
    this.links.delete(ws);
    this.membership.exit(link, code === LinkClose.leave ? "left" : "gone");
  }

  /** Rebuilds a link after the room slept, from its attachment; undefined when `ws` is no link. */
  restore(ws: WebSocket): Participant | undefined {
    const attachment = ws.deserializeAttachment() as LinkAttachment | null;
    if (attachment?.kind !== "link") return undefined;
    const link = new LinkParticipant(ws, attachment.member, (gone) => this.links.delete(gone));
    this.links.set(ws, link);
    return link;
  }
}

/** A gateway link as a member: frames go down the link, and the gateway forwards them. */
class LinkParticipant implements Participant {
  constructor(
    readonly ws: WebSocket,
    public member: Member | undefined,
    private readonly ended: (ws: WebSocket) => void,
  ) {}

  send(frame: string): void {
    try {
      this.ws.send(frame);
    } catch {
      // Closed under us: its close event takes it out of the room.
    }
  }

  save(): void {
    if (this.member) this.ws.serializeAttachment({ kind: "link", member: this.member } satisfies LinkAttachment);
  }

  end(code: number, reason: string): void {
    this.ended(this.ws);
    try {
      this.ws.close(code, reason);
    } catch {
      // Already closed.
    }
  }
}
