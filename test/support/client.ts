/** socket.io-client as the API document uses it, plus small waiting helpers for tests. */
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";

export type { Socket };

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

/** Waits until `condition` holds, polling; rejects after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Closes every client a test file opened. */
export function closeAll(): void {
  for (const socket of open) socket.close();
  open.clear();
}
