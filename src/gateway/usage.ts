/**
 * What one gateway connection cost, logged once as `connection_stats` when it ends (or moves
 * off its polling object): the Worker requests that served it, the frames it carried both
 * ways, and the Durable Object requests it caused (links opened, commands sent down them,
 * recovery record calls; the objects bill those and count them too, in their own lines).
 *
 * Worker CPU is estimated, not timed: in production a Worker's clock stands still while it
 * computes, so it cannot time itself. The estimate charges each request and each frame the
 * local runtime's measured cost (see docs/cost.md, "Worker CPU"): an upper bound, as the
 * local runtime is slower per message than production.
 */
import type { Traffic } from "../session/engine.js";
import { log } from "../util/log.js";

/**
 * CPU milliseconds per unit, from `npm run cost` under local workerd (docs/cost.md): 0.32 to
 * 0.37 ms a frame (an idle gateway's pings and pongs with their timers), 1.7 to 2.5 ms a
 * request (an upgrade, a GET /healthz).
 */
export const WORKER_CPU_MS = { request: 2.0, frame: 0.35 } as const;

export interface ConnectionUsage {
  roomFetches: number;
  roomMessages: number;
  recordCalls: number;
}

export function workerCpuMs(traffic: Traffic): number {
  const ms = traffic.requests * WORKER_CPU_MS.request + (traffic.framesIn + traffic.framesOut) * WORKER_CPU_MS.frame;
  return Math.round(ms * 100) / 100;
}

export function logConnectionUsage(ids: { sid: string; socketId: string }, transport: string, traffic: Traffic, usage: ConnectionUsage): void {
  log("connection_stats", { ...ids, transport, ...traffic, ...usage, workerCpuMs: workerCpuMs(traffic) });
}
