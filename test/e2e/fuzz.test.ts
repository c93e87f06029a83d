/**
 * Hostile input: random and mutated Engine.IO / Socket.IO frames against the Worker
 * under `wrangler dev`. After each batch a fresh client must still connect, members
 * of an unrelated room must still get every message, and the server must have logged
 * no uncaught exception. Seeded, bounded in frames and time.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PrRoomMessage } from "../../src/events.js";
import { closeAll, collect, connected, until, type Socket } from "../support/client.js";
import { openRawWs, type RawClient } from "../support/raw-ws.js";
import { wranglerDev } from "../support/wrangler-dev.js";
import type { ServedWorker } from "../support/worker.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20261130);
const BATCHES = 8;
const FRAMES_PER_BATCH = 300;
const CONNECTIONS_PER_BATCH = 6;
const WALL_CLOCK_LIMIT_MS = 90_000;

/** mulberry32: small, seedable, good enough to pick frames. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = prng(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const int = (max: number) => Math.floor(random() * max);

const EVENTS = ["join-pr-room", "send-message-to-pr-room", "leave-pr-room", "typing", "stop-typing"] as const;
const WRONG_VALUES: unknown[] = [
  null, true, 0, -1, -1e308, 1e308, 2 ** 53 + 1, 1.5, NaN, "", " ", "\u0000", "x".repeat(5000), "<script>",
  [], [1, 2], {}, { $gt: "" }, { __proto__: { polluted: true } }, "123abc", "-5", "0", "９",
];
const deep = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

/** A frame built to be wrong in one specific way. */
function hostileFrame(): string | ArrayBuffer {
  const valid = { pullRequestId: 1 + int(5), username: pick(["alice", "bob"]), message: "hello" };
  switch (int(12)) {
    case 0: // garbage text
      return Array.from({ length: 1 + int(40) }, () => String.fromCharCode(int(0xffff))).join("");
    case 1: // random bytes where text belongs
      return crypto.getRandomValues(new Uint8Array(1 + int(64))).buffer;
    case 2: // a valid event, truncated
      return `42${JSON.stringify([pick(EVENTS), valid])}`.slice(0, 2 + int(30));
    case 3: // a valid event, mutated
      return mutate(`42${int(3) ? "" : int(1000)}${JSON.stringify([pick(EVENTS), valid])}`);
    case 4: // every field of every event, wrong
      return `42${JSON.stringify([pick(EVENTS), { ...valid, [pick(["pullRequestId", "username", "message"])]: pick(WRONG_VALUES) }])}`;
    case 5: // payload itself wrong
      return `42${JSON.stringify([pick(EVENTS), pick(WRONG_VALUES)])}`;
    case 6: // huge and negative ack ids, numbers where names belong
      return pick([`42${"9".repeat(30)}["typing",{}]`, `42-1["typing",{}]`, `43${int(1e9)}[]`, `42[123]`, `42[null]`, `42[]`]);
    case 7: // deep nesting
      return `42["send-message-to-pr-room",${deep(1 + int(20_000))}]`;
    case 8: // unknown events and namespaces
      return pick([`42["${"x".repeat(int(100))}",{}]`, `40/admin,`, `42/admin,["x"]`, `44{"message":"x"}`, `41/nope,`]);
    case 9: // binary packet headers with lies
      return pick([`451-["typing",{"_placeholder":true,"num":9}]`, `45999-["x"]`, `46${int(10)}-1[]`, `45-1["x"]`]);
    case 10: // Engine.IO packets out of place
      return pick(["0", "2", "2probe", "5", "6", "7", "", "4", "1garbage"]);
    default: // rapid join/leave cycles
      return `42${JSON.stringify([pick(["join-pr-room", "leave-pr-room"]), valid])}`;
  }
}

function mutate(text: string): string {
  const chars = [...text];
  for (let n = 1 + int(4); n > 0; n--) {
    const at = int(chars.length + 1);
    const op = int(3);
    if (op === 0) chars.splice(at, 1);
    else if (op === 1) chars.splice(at, 0, pick(['"', "[", "]", "{", "}", ",", ":", "\\", "0", "-", "e"]));
    else chars[at] = String.fromCharCode(int(128));
  }
  return chars.join("");
}

let worker: ServedWorker;
let bystanders: [Socket, Socket];
const BYSTANDER_PR = 777_777;

beforeAll(async () => {
  worker = await wranglerDev("wrangler.toml", ["--var", "PRESENCE_GRACE_MS:300"]);
  const a = await connected(worker.url);
  const b = await connected(worker.url);
  for (const [socket, username] of [[a, "carol"], [b, "dave"]] as const) {
    const ack = await socket.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: BYSTANDER_PR, username });
    expect(ack.ok).toBe(true);
  }
  bystanders = [a, b];
});
afterAll(async () => {
  closeAll();
  await worker?.close();
});

describe("hostile input", () => {
  it(`survives ${BATCHES} batches of ${FRAMES_PER_BATCH} hostile frames (seed ${SEED})`, async () => {
    const started = Date.now();
    const [carol, dave] = bystanders;
    const atCarol = collect<PrRoomMessage>(carol, "pr-room-message");
    const atDave = collect<PrRoomMessage>(dave, "pr-room-message");
    let sent = 0;
    let closedByServer = 0;

    for (let batch = 0; batch < BATCHES && Date.now() - started < WALL_CLOCK_LIMIT_MS; batch++) {
      const peers: RawClient[] = [];
      for (let c = 0; c < CONNECTIONS_PER_BATCH; c++) {
        const peer = await openRawWs(worker.url);
        await peer.connect();
        peers.push(peer);
      }
      for (let f = 0; f < FRAMES_PER_BATCH; f++) {
        let index = int(peers.length);
        if (peers[index]!.closed) {
          closedByServer++;
          peers[index] = await openRawWs(worker.url);
          await peers[index]!.connect().catch(() => undefined);
        }
        try {
          peers[index]!.send(hostileFrame());
          sent++;
        } catch {
          // The server closed it between our check and the send: counted on the next pick.
        }
        if (f % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 20)); // stay below capacity
      }
      for (const peer of peers) peer.close();

      // The unrelated room still works, completely; a fresh client still connects.
      const text = `batch ${batch}`;
      const ack = await carol.timeout(5000).emitWithAck("send-message-to-pr-room", { pullRequestId: BYSTANDER_PR, username: "carol", message: text });
      expect(ack.ok).toBe(true);
      await until(() => atDave.length === batch + 1 && atCarol.length === batch + 1, 5000, `bystanders after ${text}`);
      const fresh = await connected(worker.url);
      expect(fresh.connected).toBe(true);
      fresh.close();
    }

    // Rapid join/leave on one connection, without waiting: it must leave no ghost behind.
    const flicker = await openRawWs(worker.url);
    await flicker.connect();
    for (let i = 0; i < 40; i++) {
      flicker.emit(i % 2 ? "leave-pr-room" : "join-pr-room", { pullRequestId: BYSTANDER_PR, username: "flicker" });
      sent++;
    }
    flicker.emit("leave-pr-room", { pullRequestId: BYSTANDER_PR, username: "flicker" });
    await new Promise((resolve) => setTimeout(resolve, 2500)); // the rate budget refills; the last leave went through
    flicker.emit("leave-pr-room", { pullRequestId: BYSTANDER_PR, username: "flicker" }, 1);
    expect(await flicker.ack(1)).toMatchObject({ ok: true });
    // carol and dave, no flicker, once flicker's presence grace is over.
    const deadline = Date.now() + 5000;
    let users: string[] = [];
    while ((users = (await dave.timeout(5000).emitWithAck("get-pr-room-users", { pullRequestId: BYSTANDER_PR })).users).join() !== "carol,dave") {
      if (Date.now() > deadline) throw new Error(`flicker is still there: ${users.join()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const count = await dave.timeout(5000).emitWithAck("join-pr-room", { pullRequestId: BYSTANDER_PR, username: "dave" });
    expect(count.members).toBe(2);
    flicker.close();

    expect(atDave.map((m) => m.message)).toEqual(atCarol.map((m) => m.message));
    expect(atDave.map((m) => m.message)).toEqual(Array.from({ length: atDave.length }, (_, i) => `batch ${i}`));
    const logs = worker.logs!();
    expect(logs).not.toMatch(/Uncaught|Unhandled|handler_error|\[ERROR\]/);
    console.log(`fuzz: seed ${SEED}, ${sent} hostile frames sent, ${closedByServer} connections closed by the server, ${atDave.length} batches checked`);
    expect(sent).toBeGreaterThan(BATCHES * FRAMES_PER_BATCH * 0.9);
  });
});
