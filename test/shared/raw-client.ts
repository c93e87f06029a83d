/**
 * A bare Engine.IO/Socket.IO peer for tests: it speaks frames, not the client
 * library, so tests can send exactly what they mean, broken or not. The socket
 * comes from workerd (tests inside the runtime) or Node (tests against wrangler).
 */
export type Frame = string | ArrayBuffer;

/** The part of a WebSocket this client needs: the same in workerd and in Node. */
export interface FrameSocket {
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  addEventListener(type: "close", listener: (event: { code: number; reason: string }) => void): void;
  send(frame: string | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
}

export class RawClient {
  private readonly inbox: Frame[] = [];
  private waiters: Array<() => void> = [];
  closed: { code: number; reason: string } | undefined;
  private closing = false;
  /** Answer server pings as they arrive, as a live client does; heartbeat tests turn this off. */
  autoPong = true;
  /** Drop noop packets ("6"), as socket.io-client does: a room answers each pong with one. */
  skipNoops = true;

  constructor(readonly ws: FrameSocket) {
    ws.addEventListener("message", (event) => {
      if (event.data === "2" && this.autoPong) return this.pong();
      if (event.data === "6" && this.skipNoops) return;
      this.inbox.push(event.data as Frame);
      this.wake();
    });
    ws.addEventListener("close", (event) => {
      this.closed = { code: event.code, reason: event.reason };
      this.wake();
    });
  }

  send(frame: Frame): void {
    this.ws.send(frame);
  }

  /** Answers a ping, unless this side has closed meanwhile. */
  private pong(): void {
    if (this.closing || this.closed) return;
    this.send("3");
  }

  /** Reads the open packet, CONNECTs to "/" and returns the socket id. */
  async connect(auth?: object): Promise<string> {
    await this.next(); // open packet
    this.send(auth ? `40${JSON.stringify(auth)}` : "40");
    const reply = await this.next();
    if (typeof reply !== "string" || !reply.startsWith("40{")) throw new Error(`CONNECT failed: ${String(reply)}`);
    return JSON.parse(reply.slice(2)).sid;
  }

  /** Sends a Socket.IO event on "/" (optionally asking for an ack). */
  emit(event: string, payload: unknown, ackId?: number): void {
    this.send(`42${ackId ?? ""}${JSON.stringify([event, payload])}`);
  }

  /** The next frame (pings included when autoPong is off). */
  async next(options: { timeoutMs?: number } = {}): Promise<Frame> {
    return this.take(() => true, options);
  }

  /**
   * Removes and returns the first frame that matches, waiting for it; frames that do
   * not match stay queued for later reads.
   */
  async take(match: (frame: Frame) => boolean, options: { timeoutMs?: number } = {}): Promise<Frame> {
    const deadline = Date.now() + (options.timeoutMs ?? 3000);
    for (;;) {
      const index = this.inbox.findIndex(match);
      if (index !== -1) return this.inbox.splice(index, 1)[0]!;
      if (this.closed) throw new Error(`closed (${this.closed.code} ${this.closed.reason}) while waiting`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a frame");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Whether a frame that matches has arrived and not been read yet. */
  inboxHas(match: (frame: Frame) => boolean): boolean {
    return this.inbox.some(match);
  }

  /** The next Socket.IO EVENT on "/" as [name, payload] (of `name`, if given). */
  async nextEvent(name?: string, timeoutMs = 3000): Promise<[string, any]> {
    const frame = await this.take(
      (f) => typeof f === "string" && f.startsWith("42[") && (!name || f.startsWith(`42[${JSON.stringify(name)}`)),
      { timeoutMs },
    );
    return JSON.parse((frame as string).slice(2));
  }

  /** The ACK for `ackId`. */
  async ack(ackId: number, timeoutMs = 3000): Promise<any> {
    const prefix = `43${ackId}[`;
    const frame = await this.take((f) => typeof f === "string" && f.startsWith(prefix), { timeoutMs });
    return JSON.parse((frame as string).slice(prefix.length - 1))[0];
  }

  /** Resolves with the close once the server closes the socket. */
  async waitClosed(timeoutMs = 3000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      try {
        await this.next({ timeoutMs: Math.max(1, deadline - Date.now()) });
      } catch (error) {
        if (!this.closed) throw error;
      }
    }
    return this.closed;
  }

  close(): void {
    this.closing = true;
    try {
      this.ws.close(1000, "done");
    } catch {
      // Already closed.
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
