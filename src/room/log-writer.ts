/**
 * Messages on their way into the log, written in bursts (a group commit). The first message
 * after a quiet spell is written and broadcast at once. While its write commits, the next
 * ones wait; as soon as it has, they go together: one statement, one commit, however many
 * came. A room writes per burst, not per message, and the latency is the same, since a
 * message sent while a commit is out could not leave before that commit anyway.
 *
 * Durability is unchanged: a message is broadcast and answered only after its own write, and
 * the runtime holds everything the room sends until the writes before it have committed (the
 * output gate). A crash loses only messages nobody was told of, whose senders get no answer
 * and send again (with a client id, never twice).
 */
import type { LogEntry, RoomLog } from "./log.js";

export interface Draft {
  username: string;
  message: string;
  clientId?: string;
}

export interface Posted {
  id: string;
  seq: number;
}

export type Answer = (posted: Posted) => void;

/**
 * Messages that may wait for the commit in flight. A commit takes milliseconds, so only a
 * storage that stalls lets this many gather; past it a message is refused (its sender is told
 * and may send it again), so memory stays bounded however long the stall.
 */
export const MAX_WAITING_MESSAGES = 1_000;

export interface WriterHooks {
  /** Resolves once every write so far is durable (the storage's sync). */
  sync(): Promise<void>;
  /** The message is in the log: send it to the room. */
  logged(entry: LogEntry): void;
  /** The storage failed: the room must restart, as after a crash (nothing unwritten went out). */
  failed(error: unknown): void;
}

export class LogWriter {
  /** Messages waiting for the commit in flight, in order, with whoever waits for each one's answer. */
  private waiting: Array<{ draft: Draft; answers: Answer[] }> = [];
  private committing = false;

  constructor(
    private readonly log: RoomLog,
    private readonly hooks: WriterHooks,
    private readonly maxWaiting = MAX_WAITING_MESSAGES,
  ) {}

  /** Messages waiting for their write. */
  get pending(): number {
    return this.waiting.length;
  }

  /**
   * Logs and broadcasts `draft`, then answers; a resend of a message still waiting gets that
   * one's answer. False (nothing taken) while MAX_WAITING_MESSAGES wait already.
   */
  post(draft: Draft, answer: Answer): boolean {
    if (draft.clientId !== undefined) {
      const first = this.waiting.find((waiting) => waiting.draft.clientId === draft.clientId && waiting.draft.username === draft.username);
      if (first) {
        first.answers.push(answer);
        return true;
      }
    }
    if (this.waiting.length >= this.maxWaiting) return false;
    this.waiting.push({ draft, answers: [answer] });
    if (!this.committing) this.flush();
    return true;
  }

  private flush(): void {
    const batch = this.waiting;
    this.waiting = [];
    this.committing = batch.length > 0;
    if (!this.committing) return;
    const at = Date.now();
    const drafts = batch.map(({ draft }) => ({ entry: { at, id: crypto.randomUUID(), username: draft.username, message: draft.message }, clientId: draft.clientId }));
    let seqs: number[];
    try {
      seqs = this.log.appendAll(drafts);
    } catch (error) {
      return this.hooks.failed(error);
    }
    batch.forEach(({ answers }, index) => {
      const entry = { ...drafts[index]!.entry, seq: seqs[index]! };
      this.hooks.logged(entry);
      for (const answer of answers) answer({ id: entry.id, seq: entry.seq });
    });
    this.hooks.sync().then(
      () => this.flush(),
      (error: unknown) => this.hooks.failed(error),
    );
  }
}
