/** Waiting for conditions, never for fixed times: the same in workerd and in Node. */

/**
 * Waits until `condition` (sync or async) holds, polling every `intervalMs`; rejects after
 * `timeoutMs`, naming `what` (a function is asked only then, so it can say what it saw last).
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  what: string | (() => string) = "condition",
  intervalMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "function" ? what() : what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Asserts that `condition` stays false for `ms`: for "nothing happens" checks, polled, never a blind sleep. */
export async function never(condition: () => boolean, ms: number, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (condition()) throw new Error(`${what} happened`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (condition()) throw new Error(`${what} happened`);
}
