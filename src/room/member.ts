/** A member of a room: one connection (a gateway link or a direct socket) that joined it. */
export interface Member {
  /** The Engine.IO session id, for logs. */
  sid: string;
  /** The Socket.IO id: who the member is across recovery. */
  socketId: string;
  username: string;
  /** When its `typing` expires; 0 when not typing. */
  typingUntil: number;
}

/** How a member's frames leave the room: a gateway link, or a direct connection's session. */
export interface Participant {
  readonly ws: WebSocket;
  member: Member | undefined;
  /** Sends one finished frame. `bytes` is its UTF-8 size (counted once per broadcast) for the slow-reader cap. */
  send(frame: string, bytes: number): void;
  /** Saves what changed into the socket's attachment. */
  save(): void;
  /** Closes its socket with `code` (another connection took its place). */
  end(code: number, reason: string): void;
}
