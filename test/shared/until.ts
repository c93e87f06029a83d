/** Waiting for conditions, never for fixed times: the same in workerd and in Node. */

/** Waits until `condition` holds, polling every 10 ms; rejects after `timeoutMs`, naming `what`. */
export async function until(condition: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
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
