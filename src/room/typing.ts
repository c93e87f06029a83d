/**
 * Who is typing, per person: a user types while any of their connections does, so one
 * tab closing or going quiet does not stop another tab's typing, and `stop-typing` goes
 * out only when none of them types any more. Each connection's deadline lives in its
 * member record (the socket's attachment); this index is rebuilt from those.
 */
import type { Member } from "./member.js";

export class Typing {
  private readonly byUser = new Map<string, Set<Member>>();

  /** Indexes a member that was typing when the room went to sleep. */
  restore(member: Member): void {
    if (member.typingUntil !== 0) this.typists(member.username).add(member);
  }

  /** A connection types until `until`. True when its user was not typing before. */
  start(member: Member, until: number): boolean {
    const typists = this.typists(member.username);
    const first = typists.size === 0;
    member.typingUntil = until;
    typists.add(member);
    return first;
  }

  /** A connection stops (or goes). True when its user has no typing connection left. */
  stop(member: Member): boolean {
    if (member.typingUntil === 0) return false;
    member.typingUntil = 0;
    const typists = this.byUser.get(member.username);
    if (!typists) return true;
    typists.delete(member);
    if (typists.size > 0) return false;
    this.byUser.delete(member.username);
    return true;
  }

  /** Connections whose typing was neither renewed nor stopped in time. */
  expired(now: number): Member[] {
    const out: Member[] = [];
    for (const typists of this.byUser.values()) {
      for (const member of typists) if (member.typingUntil <= now) out.push(member);
    }
    return out;
  }

  nextExpiryAt(): number | undefined {
    let next: number | undefined;
    for (const typists of this.byUser.values()) {
      for (const member of typists) if (next === undefined || member.typingUntil < next) next = member.typingUntil;
    }
    return next;
  }

  private typists(username: string): Set<Member> {
    let set = this.byUser.get(username);
    if (!set) this.byUser.set(username, (set = new Set()));
    return set;
  }
}
