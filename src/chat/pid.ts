/**
 * The private session id (pid) of connection state recovery: a bearer secret the client
 * gets in its CONNECT answer and shows when it comes back. Random (240 bits), checked for
 * shape before use, and stored only as a SHA-256 hash; it is never logged. (It is in memory
 * while its connection lives, and travels with a polling session's hand-over to WebSocket.)
 */
import { randomId } from "../util/ids.js";

const PID = /^[A-Za-z0-9_-]{40}$/;

export function newPid(): string {
  return randomId() + randomId();
}

export function isPid(value: unknown): value is string {
  return typeof value === "string" && PID.test(value);
}

/** Hex SHA-256 of a pid: what storage keys and rows hold instead of the pid. */
export async function pidHash(pid: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(pid));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}
