/** socket.io-client as the API document uses it, plus small waiting helpers for tests. */
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import { until } from "../shared/until.js";

export type { Socket };
export { until };

const open = new Set<Socket>();

/** `io(url, { transports: ['websocket'] })`, as the document connects. */
export function client(url: string, options: Partial<ManagerOptions & SocketOptions> = {}): Socket {
  const socket = io(url, { transports: ["websocket"], forceNew: true, ...options });
  open.add(socket);
  return socket;
}

/** A connected client. */
export async function connected(url: string, options: Partial<ManagerOptions & SocketOptions> = {}): Promise<Socket> {
  const socket = client(url, options);
  await once(socket, "connect");
  return socket;
}

/** Resolves with the arguments of the next `event`, or rejects after `timeoutMs`. */
export function once(socket: Socket, event: string, timeoutMs = 5000): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, listener);
      reject(new Error(`no ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (...args: any[]) => {
      clearTimeout(timer);
      socket.off(event, listener);
      resolve(args);
    };
    socket.on(event, listener);
  });
}

/** Everything `event` delivers from now on, into an array. */
export function collect<T = any>(socket: Socket, event: string): T[] {
  const seen: T[] = [];
  socket.on(event, (payload: T) => seen.push(payload));
  return seen;
}

/** Closes every client a test file opened. */
export function closeAll(): void {
  for (const socket of open) socket.close();
  open.clear();
}

/** `socket.timeout(timeoutMs).emitWithAck(event, payload)`: the ack, or a rejection after `timeoutMs`. */
export function ack(socket: Socket, event: string, payload: unknown, timeoutMs = 5000): Promise<any> {
  return socket.timeout(timeoutMs).emitWithAck(event, payload);
}

/** Sends `message` to room `pullRequestId` as `username`; resolves with the ack. */
export function send(socket: Socket, pullRequestId: number | string, username: string, message: string): Promise<any> {
  return ack(socket, "send-message-to-pr-room", { pullRequestId, username, message });
}

/** One server event as a client saw it, in arrival order with every other. */
export type Seen = [event: string, payload: any];

/** Every server event `socket` gets from now on, in order, whatever its name. */
export function record(socket: Socket): Seen[] {
  const seen: Seen[] = [];
  socket.onAny((event: string, payload: unknown) => seen.push([event, payload]));
  return seen;
}

let markers = 0;

/**
 * For "nothing else arrives" checks without a fixed sleep: sends a message to the room from
 * `sender` (which must have joined it as `username`) and waits until every log in `at` has
 * it. Anything the room sent those sockets before, it sent ahead of the marker, so once the
 * marker is in, the logs are complete up to it. Returns the marker's text.
 */
export async function marker(sender: Socket, pullRequestId: number | string, username: string, at: Seen[][]): Promise<string> {
  const text = `marker ${++markers}`;
  const answer = await send(sender, pullRequestId, username, text);
  if (!answer?.ok) throw new Error(`the marker was refused: ${JSON.stringify(answer)}`);
  await until(() => at.every((log) => log.some(([event, payload]) => event === "pr-room-message" && payload.message === text)), 5000, text);
  return text;
}

/** The events of `log` up to and including the marker `text`. */
export function upTo(log: Seen[], text: string): Seen[] {
  const end = log.findIndex(([event, payload]) => event === "pr-room-message" && payload.message === text);
  return end === -1 ? log.slice() : log.slice(0, end + 1);
}

/**
 * Emits with an ack again while the answer is `rate_limited`: waiting for a rate budget to
 * refill is a wait on time, polled here rather than slept. Other answers are returned.
 */
export async function whileRateLimited(emit: () => Promise<any>, timeoutMs = 10_000, code = "rate_limited"): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await emit();
    if (answer?.ok !== false || answer.error?.code !== code) return answer;
    if (Date.now() > deadline) throw new Error(`still ${code} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A client that either connects or is refused: resolves with the socket, or rejects with the connect_error at once. */
export async function connectedOrRefused(url: string, options: Partial<ManagerOptions & SocketOptions> = {}, timeoutMs = 5000): Promise<Socket> {
  const socket = client(url, { reconnection: false, ...options });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`neither connect nor connect_error within ${timeoutMs} ms`)), timeoutMs);
    socket.once("connect", () => (clearTimeout(timer), resolve()));
    socket.once("connect_error", (error) => (clearTimeout(timer), reject(error)));
  });
  return socket;
}

/**
 * The documented client in a room: connected, joined, and joining again on every later
 * `connect` as the API document's client does (harmless after a recovered reconnect).
 */
export async function documentedMember(
  url: string,
  pullRequestId: number | string,
  username: string,
  options: Partial<ManagerOptions & SocketOptions> = {},
): Promise<Socket> {
  const socket = await connected(url, options);
  socket.on("connect", () => socket.emit("join-pr-room", { pullRequestId, username }));
  const joined = await ack(socket, "join-pr-room", { pullRequestId, username });
  if (!joined?.ok) throw new Error(`join refused: ${JSON.stringify(joined)}`);
  return socket;
}
