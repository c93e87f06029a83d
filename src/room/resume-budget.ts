/**
 * Resumes per connection over the last minute (MAX_RESUMES_PER_MINUTE): a client that keeps
 * dropping and resuming replays at most this often. Kept in memory (a restart forgets it,
 * which only resets the count); connections with no resume in the last minute are dropped
 * at most a minute later, so it holds only the connections that resumed in the last two minutes.
 */
export class ResumeBudget {
  private readonly times = new Map<string, number[]>();
  private prunedAt = 0;

  constructor(private readonly perMinute: number) {}

  take(socketId: string, now: number): boolean {
    if (now - this.prunedAt >= 60_000) {
      this.prunedAt = now;
      for (const [id, times] of this.times) if (now - times.at(-1)! >= 60_000) this.times.delete(id);
    }
    const times = this.times.get(socketId) ?? [];
    while (times.length > 0 && now - times[0]! >= 60_000) times.shift();
    if (times.length >= this.perMinute) return false;
    times.push(now);
    this.times.set(socketId, times);
    return true;
  }
}
