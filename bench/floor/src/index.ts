// Benchmark floor: the cheapest Worker that can serve the bench load to an unmodified
// socket.io-client. The room is named in the URL (?room=123), so the Worker passes the upgrade
// straight to the room's Durable Object, which accepts it as a hibernatable WebSocket and speaks
// only the Engine.IO v4 / Socket.IO v5 frames the load generator uses. Whatever the real server
// costs above this floor is the price of its gateway, validation and generality.
import { DurableObject } from "cloudflare:workers";

interface Env {
  ROOM: DurableObjectNamespace<FloorRoom>;
}

const PING_INTERVAL = 25_000;
const PING_TIMEOUT = 20_000;

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response("ok");
    if (!url.pathname.startsWith("/socket.io/")) return new Response("not found", { status: 404 });
    if (request.headers.get("Upgrade") !== "websocket") return new Response("websocket only", { status: 400 });
    const room = url.searchParams.get("room");
    if (!room) return new Response("room query parameter required", { status: 400 });
    return env.ROOM.get(env.ROOM.idFromName(room)).fetch(request);
  },
} satisfies ExportedHandler<Env>;

// Per-socket state; it lives in the attachment so it survives hibernation.
interface Member {
  sid: string;
  username: string | null; // null until join-pr-room
}

type Payload = { pullRequestId?: unknown; username?: unknown; message?: unknown };

export class FloorRoom extends DurableObject<Env> {
  // Caches rebuilt lazily after hibernation: decoding attachments per message would dominate.
  private sockets: Set<WebSocket> | null = null;
  private readonly members = new WeakMap<WebSocket, Member>();
  private readonly idPrefix = crypto.randomUUID().slice(0, 8);
  private seq = 0;
  private alarmPending = false;

  override async fetch(_request: Request): Promise<Response> {
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    const member: Member = { sid: crypto.randomUUID(), username: null };
    server.serializeAttachment(member);
    this.members.set(server, member);
    this.all().add(server);
    server.send(`0${JSON.stringify({ sid: member.sid, upgrades: [], pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT, maxPayload: 1_000_000 })}`);
    // socket.io-client closes after pingInterval + pingTimeout without a server ping; an alarm
    // (unlike a timer) lets the object hibernate in between.
    if (!this.alarmPending && (await this.ctx.storage.getAlarm()) === null) {
      await this.ctx.storage.setAlarm(Date.now() + PING_INTERVAL);
    }
    this.alarmPending = true;
    return new Response(null, { status: 101, webSocket: client });
  }

  override async alarm(): Promise<void> {
    this.alarmPending = false;
    const sockets = this.all();
    if (sockets.size === 0) return;
    for (const ws of sockets) this.sendTo(ws, "2");
    await this.ctx.storage.setAlarm(Date.now() + PING_INTERVAL);
    this.alarmPending = true;
  }

  override webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): void {
    if (typeof data !== "string") return;
    const type = data.charCodeAt(0);
    if (type === 0x33 /* "3" pong */) return;
    if (type === 0x31 /* "1" close */) return this.drop(ws);
    if (type !== 0x34 /* "4" message */) return;
    if (data.startsWith("40")) return this.sendTo(ws, `40{"sid":"${this.member(ws).sid}"}`);
    if (data.startsWith("41")) return this.drop(ws);
    if (data.startsWith("42")) this.onEvent(ws, data);
  }

  override webSocketClose(ws: WebSocket): void {
    this.drop(ws);
  }

  override webSocketError(ws: WebSocket): void {
    this.drop(ws);
  }

  // `42[...]` or `42<ackId>[...]`, default namespace only.
  private onEvent(ws: WebSocket, data: string): void {
    const bracket = data.indexOf("[", 2);
    if (bracket < 0) return;
    const ackId = bracket > 2 ? data.slice(2, bracket) : null;
    let event: unknown, payload: Payload;
    try {
      [event, payload] = JSON.parse(data.slice(bracket));
    } catch {
      return;
    }
    if (payload === null || typeof payload !== "object") return this.fail(ws, ackId, String(event), "invalid_payload");
    const me = this.member(ws);
    const pullRequestId = Number(payload.pullRequestId);
    switch (event) {
      case "join-pr-room": {
        if (typeof payload.username !== "string") return this.fail(ws, ackId, event, "invalid_payload");
        if (me.username !== payload.username) {
          me.username = payload.username;
          ws.serializeAttachment(me);
        }
        const names = new Set<string>();
        for (const other of this.all()) {
          const name = this.member(other).username;
          if (name !== null) names.add(name);
        }
        return this.ack(ws, ackId, { ok: true, pullRequestId, members: [...names] });
      }
      case "send-message-to-pr-room": {
        if (me.username === null) return this.fail(ws, ackId, event, "not_joined");
        const id = `${this.idPrefix}-${++this.seq}`;
        // Encoded once, sent as-is to every member: the whole point of a room object.
        const frame = `42${JSON.stringify(["pr-room-message", { pullRequestId, username: me.username, message: payload.message, id, sentAt: Date.now() }])}`;
        for (const other of this.all()) {
          if (this.member(other).username !== null) this.sendTo(other, frame);
        }
        return this.ack(ws, ackId, { ok: true, id });
      }
      case "leave-pr-room": {
        me.username = null;
        ws.serializeAttachment(me);
        return this.ack(ws, ackId, { ok: true, pullRequestId });
      }
      case "typing":
      case "stop-typing": {
        if (me.username === null) return this.fail(ws, ackId, event, "not_joined");
        const frame = `42${JSON.stringify([event, { pullRequestId, username: me.username }])}`;
        for (const other of this.all()) {
          if (other !== ws && this.member(other).username !== null) this.sendTo(other, frame);
        }
        return this.ack(ws, ackId, { ok: true });
      }
      default:
        return this.fail(ws, ackId, String(event), "invalid_payload");
    }
  }

  private ack(ws: WebSocket, ackId: string | null, result: unknown): void {
    if (ackId !== null) this.sendTo(ws, `43${ackId}${JSON.stringify([result])}`);
  }

  private fail(ws: WebSocket, ackId: string | null, event: string, code: string): void {
    const error = { code, message: code };
    if (ackId !== null) this.ack(ws, ackId, { ok: false, error });
    else this.sendTo(ws, `42${JSON.stringify(["pr-room-error", { event, ...error }])}`);
  }

  private all(): Set<WebSocket> {
    this.sockets ??= new Set(this.ctx.getWebSockets());
    return this.sockets;
  }

  private member(ws: WebSocket): Member {
    let m = this.members.get(ws);
    if (!m) {
      m = ws.deserializeAttachment() as Member;
      this.members.set(ws, m);
    }
    return m;
  }

  private sendTo(ws: WebSocket, frame: string): void {
    try {
      ws.send(frame);
    } catch {
      this.drop(ws); // closed under us; forget it
    }
  }

  private drop(ws: WebSocket): void {
    this.sockets?.delete(ws);
    try {
      ws.close(1000, "bye");
    } catch {
      // already closed
    }
  }
}
