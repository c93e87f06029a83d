/** The one recovery decision both paths take (src/chat/recovery.ts), rule by rule. */
import { describe, expect, it } from "vitest";
import type { Identity } from "../../src/chat/identity.js";
import { decideRecovery, type Candidate } from "../../src/chat/recovery.js";

const timing = { RECOVERY_WINDOW_MS: 120_000, silenceMs: 45_000 };
const now = 1_000_000;
const alice: Identity = { username: "alice", expiresAt: now + 60_000, scopes: new Set(["chat"]) };
const went: Candidate = { departedAt: now - 1_000, subject: "alice", rooms: ["1", "2"] };

describe("decideRecovery", () => {
  it("takes back the same subject within the window, from where its offset says", () => {
    expect(decideRecovery(went, { identity: alice, only: undefined, offset: "1:4,2:9" }, now, timing)).toEqual({
      ok: true,
      positions: new Map([["1", 4], ["2", 9]]),
    });
    expect(decideRecovery(went, { identity: alice, only: undefined }, now, timing)).toEqual({ ok: true, positions: new Map() });
  });

  it.each([
    ["off", went, { identity: alice }, { ...timing, RECOVERY_WINDOW_MS: 0 }, "recovery is off"],
    ["away too long", { ...went, departedAt: now - 120_001 }, { identity: alice }, timing, "away longer than the recovery window"],
    ["another subject", went, { identity: { ...alice, username: "mallory" } }, timing, "another token subject"],
    ["identity turned off", went, { identity: undefined }, timing, "another token subject"],
    ["no chat scope", went, { identity: { ...alice, scopes: new Set(["read"]) } }, timing, "the token does not grant chat"],
    ["a room the token no longer allows", went, { identity: { ...alice, pullRequests: new Set(["1"]) } }, timing, "the token no longer allows pr:2"],
    ["another pull request in the URL", went, { identity: alice, only: "1" }, timing, "this connection was opened for pr:1, not pr:2"],
    ["a malformed offset", went, { identity: alice, offset: "x" }, timing, "malformed offset"],
    [
      "a live connection, with a window shorter than a heartbeat",
      { ...went, departedAt: null },
      { identity: alice },
      { ...timing, RECOVERY_WINDOW_MS: 30_000 },
      "the previous connection has not ended yet, and may have been away longer than the recovery window",
    ],
  ] as const)("refuses: %s", (_, candidate, claimant, config, why) => {
    expect(decideRecovery(candidate, { only: undefined, ...claimant } as never, now, config)).toEqual({ ok: false, why });
  });
});
