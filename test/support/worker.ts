/**
 * Serves a Worker with wrangler for a Node-side test, on a free loopback port.
 * This is wrangler's own dev server (workerd behind its dev proxy), as `npm start` runs it.
 */
import { createTestHarness } from "wrangler";

export interface ServedWorker {
  /** http://127.0.0.1:PORT */
  url: string;
  close(): Promise<void>;
  /** What the server printed so far (wrangler dev children only). */
  logs?(): string;
}

export async function serveWorker(options: { configPath?: string; vars?: Record<string, string> } = {}): Promise<ServedWorker> {
  const harness = createTestHarness({
    workers: [{ configPath: options.configPath ?? "./wrangler.toml", vars: options.vars }],
  });
  const { url } = await harness.listen();
  const origin = url.origin.replace("localhost", "127.0.0.1");
  // The proxy listens before the worker is up; wait until the worker itself answers.
  await untilServing(origin, 30_000, () => "");
  return { url: origin, close: () => harness.close() };
}

/**
 * Polls `GET <url>/socket.io/` until the Worker answers (any status). `failure` says
 * why to give up early (a process that exited) or adds context to the time-out.
 */
export async function untilServing(url: string, timeoutMs: number, failure: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(`${url}/socket.io/`, { signal: AbortSignal.timeout(2000) });
      await response.body?.cancel();
      return;
    } catch (error) {
      const reason = failure();
      if (reason) throw new Error(reason);
      if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs / 1000} s: ${String(error)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
