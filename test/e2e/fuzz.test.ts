/**
 * Hostile input: random and mutated Engine.IO / Socket.IO frames against the Worker
 * under `wrangler dev`, on both paths: some hostile connections are held by the Worker,
 * others by rooms (`pullRequestId` in the URL), one of them the very room the bystanders
 * are in. After each batch a fresh client must still connect, members of an unrelated
 * room (one on each path) must still get every message, and the server must have logged
 * no uncaught exception. Seeded, bounded in frames and time.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PrRoomMessage } from "../../src/chat/events.js";
import { seededRandom } from "../shared/random.js";
import { ack, closeAll, collect, connected, until, whileRateLimited, type Socket } from "../support/client.js";
import { paths, rawQuery, type PathName } from "../support/paths.js";
import { openRawWs, type RawClient } from "../support/raw-ws.js";
import { wranglerDev } from "../support/wrangler-dev.js";
import type { ServedWorker } from "../support/worker.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20261130);
const BATCHES = 8;
const FRAMES_PER_BATCH = 300;
const CONNECTIONS_PER_BATCH = 6;
const WALL_CLOCK_LIMIT_MS = 90_000;

const { pick, int } = seededRandom(SEED);

const EVENTS = ["join-pr-room", "send-message-to-pr-room", "leave-pr-room", "typing", "stop-typing", "get-pr-room-users"] as const;
const WRONG_VALUES: unknown[] = [
  null, true, 0, -1, -1e308, 1e308, 2 ** 53 + 1, 1.5, NaN, "", " ", "\u0000", "x".repeat(5000), "<script>",
  [], [1, 2], {}, { $gt: "" }, "123abc", "-5", "0", "９", "admin\u200B", "\u202Eadmin", "a\u2028b",
];
/** clientMessageId must be a string of 1–64 characters. */
const WRONG_CLIENT_IDS: unknown[] = [0, 1, 1.5, -1, "", "x".repeat(65), "x".repeat(5000), {}, [], ["a"], null, true, { id: "a" }];
/**
 * Keys that mean something to JavaScript objects, written into the JSON text by hand: in an
 * object literal `{ __proto__: … }` sets the prototype and JSON.stringify drops it, so it
 * would never be sent at all.
 */
const PROTOTYPE_KEYS = [
  '"__proto__":{"polluted":true}',
  `"__proto__":{"pullRequestId":${777_777},"username":"mallory","message":"smuggled","clientMessageId":"smuggled"}`,
  '"__proto__":null',
  '"__proto__":[1,2]',
  '"__proto__":"x"',
  '"constructor":{"prototype":{"polluted":true}}',
  '"prototype":{"polluted":true}',
  '"__proto__":{"__proto__":{"polluted":true}}',
];
const deep = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

/** `42["event",{…fields, <extra>}]`, with `extra` spliced into the JSON text as it is. */
function withRawKey(event: string, fields: object, extra: string, ackId = ""): string {
  const json = JSON.stringify(fields);
  return `42${ackId}["${event}",${json === "{}" ? `{${extra}}` : `${json.slice(0, -1)},${extra}}`}]`;
}

/** A frame built to be wrong in one specific way. */
function hostileFrame(): string | ArrayBuffer {
  const valid = { pullRequestId: 1 + int(5), username: pick(["alice", "bob"]), message: "hello" };
  switch (int(15)) {
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
    case 12: // __proto__, constructor, prototype as real keys, beside valid fields or instead of them
      return withRawKey(pick(EVENTS), int(2) ? valid : {}, pick(PROTOTYPE_KEYS), int(2) ? String(int(100)) : "");
    case 13: // clientMessageId of the wrong type or length (and sometimes a good one, repeated)
      return `42${JSON.stringify(["send-message-to-pr-room", { ...valid, clientMessageId: int(4) ? pick(WRONG_CLIENT_IDS) : `c${int(3)}` }])}`;
    case 14: // get-pr-room-users with every shape of payload
      return `42${int(2) ? int(100) : ""}${JSON.stringify(["get-pr-room-users", pick([{ pullRequestId: 1 + int(5) }, ...WRONG_VALUES, { pullRequestId: pick(WRONG_VALUES) }])])}`;
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
/** carol on the gateway path, dave on the direct path, in a room no hostile frame names. */
let bystanders: [Socket, Socket];
const BYSTANDER_PR = 777_777;

/** Where each of a batch's hostile connections goes: two to the Worker, three to rooms 1–5, one into the bystanders' room. */
const HOSTILE_PATHS: Array<[PathName, () => number]> = [
  ["gateway", () => 1],
  ["gateway", () => 1],
  ["direct", () => 1 + int(5)],
  ["direct", () => 1 + int(5)],
  ["direct", () => 1 + int(5)],
  ["direct", () => BYSTANDER_PR],
];

async function hostilePeer(slot: number): Promise<RawClient> {
  const [path, pr] = HOSTILE_PATHS[slot % HOSTILE_PATHS.length]!;
  return openRawWs(worker.url, rawQuery(path, pr()));
}

/** The server's output has no sign of an exception or a handler that threw. */
function expectCleanLogs(): void {
  expect(worker.logs!()).not.toMatch(/Uncaught|Unhandled|handler_error|\[ERROR\]/);
}

beforeAll(async () => {
  // A rate budget the hostile connections never spend: their frames must meet the validators,
  // not the rate limiter, which charges every event before anything else looks at it.
  const vars = { PRESENCE_GRACE_MS: "300", RATE_LIMIT_PER_SECOND: "100000", RATE_LIMIT_BURST: "100000" };
  worker = await wranglerDev("wrangler.toml", { vars, freshState: true });
  const carol = await connected(worker.url);
  const dave = await connected(worker.url, { query: { pullRequestId: String(BYSTANDER_PR) } });
  for (const [socket, username] of [[carol, "carol"], [dave, "dave"]] as const) {
    expect((await ack(socket, "join-pr-room", { pullRequestId: BYSTANDER_PR, username })).ok).toBe(true);
  }
  bystanders = [carol, dave];
});
afterAll(async () => {
  closeAll();
  await worker?.close();
});

describe("hostile input", () => {
  it(`survives ${BATCHES} batches of ${FRAMES_PER_BATCH} hostile frames on both paths (seed ${SEED})`, async () => {
    const started = Date.now();
    const [carol, dave] = bystanders;
    const atCarol = collect<PrRoomMessage>(carol, "pr-room-message");
    const atDave = collect<PrRoomMessage>(dave, "pr-room-message");
    const joinedAtDave = collect<{ username: string }>(dave, "pr-room-user-joined");
    let sent = 0;
    let closedByServer = 0;

    for (let batch = 0; batch < BATCHES && Date.now() - started < WALL_CLOCK_LIMIT_MS; batch++) {
      const peers: RawClient[] = [];
      for (let c = 0; c < CONNECTIONS_PER_BATCH; c++) {
        const peer = await hostilePeer(c);
        await peer.connect();
        peers.push(peer);
      }
      for (let f = 0; f < FRAMES_PER_BATCH; f++) {
        let index = int(peers.length);
        if (peers[index]!.closed) {
          closedByServer++;
          peers[index] = await hostilePeer(index);
          await peers[index]!.connect().catch(() => undefined);
        }
        try {
          peers[index]!.send(hostileFrame());
          sent++;
        } catch {
          // The server closed it between our check and the send: counted on the next pick.
        }
        // Pacing: stay below capacity, and let a close from the server land before more frames go to that connection.
        if (f % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      for (const peer of peers) peer.close();

      // The unrelated room still works, completely, on both paths; a fresh client still connects on both.
      const text = `batch ${batch}`;
      const answer = await ack(batch % 2 ? dave : carol, "send-message-to-pr-room", {
        pullRequestId: BYSTANDER_PR,
        username: batch % 2 ? "dave" : "carol",
        message: text,
      });
      expect(answer.ok).toBe(true);
      await until(() => atDave.length === batch + 1 && atCarol.length === batch + 1, 5000, `bystanders after ${text}`);
      for (const [, optionsFor] of paths) {
        const fresh = await connected(worker.url, optionsFor(1 + int(5)));
        expect(fresh.connected).toBe(true);
        fresh.close();
      }
    }

    // Rapid join/leave on one connection per path, without waiting: it must leave no ghost behind.
    for (const [path] of paths) {
      const username = `flicker-${path}`;
      const flicker = await openRawWs(worker.url, rawQuery(path, BYSTANDER_PR));
      await flicker.connect();
      for (let i = 0; i < 40; i++) {
        flicker.emit(i % 2 ? "leave-pr-room" : "join-pr-room", { pullRequestId: BYSTANDER_PR, username });
        sent++;
      }
      flicker.emit("leave-pr-room", { pullRequestId: BYSTANDER_PR, username });
      // A last leave with an ack settles it (polled past the rate budget, should one be set).
      let ackId = 0;
      const leave = async () => {
        const id = ackId++;
        flicker.emit("leave-pr-room", { pullRequestId: BYSTANDER_PR, username }, id);
        return flicker.ack(id);
      };
      expect(await whileRateLimited(leave)).toMatchObject({ ok: true });
      flicker.close();
    }
    // carol and dave, no flicker, once the flickers' presence grace is over.
    const deadline = Date.now() + 5000;
    let users: string[] = [];
    while ((users = (await ack(dave, "get-pr-room-users", { pullRequestId: BYSTANDER_PR })).users).join() !== "carol,dave") {
      if (Date.now() > deadline) throw new Error(`a flicker is still there: ${users.join()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect((await ack(dave, "join-pr-room", { pullRequestId: BYSTANDER_PR, username: "dave" })).members).toBe(2);

    // Nobody but the flickers ever joined the bystanders' room (no prototype smuggled a join in).
    expect(joinedAtDave.map((notice) => notice.username).filter((name) => !name.startsWith("flicker-"))).toEqual([]);
    expect(atDave.map((m) => m.message)).toEqual(atCarol.map((m) => m.message));
    expect(atDave.map((m) => m.message)).toEqual(Array.from({ length: atDave.length }, (_, i) => `batch ${i}`));
    expectCleanLogs();
    // The hostile frames reached both hosts' rules: rooms refused joins of other rooms on direct connections.
    const refusals = new Map<string, number>();
    for (const match of worker.logs!().matchAll(/"evt":"refused".*?"code":"([a-z_]+)"/g)) refusals.set(match[1]!, (refusals.get(match[1]!) ?? 0) + 1);
    expect(refusals.get("room_mismatch")).toBeGreaterThan(0);
    expect(refusals.get("invalid_payload")).toBeGreaterThan(0);
    console.log(
      `fuzz: seed ${SEED}, ${sent} hostile frames sent, ${closedByServer} connections closed by the server, ${atDave.length} batches checked;`,
      `refusals logged: ${JSON.stringify(Object.fromEntries(refusals))}`,
    );
    expect(sent).toBeGreaterThan(BATCHES * FRAMES_PER_BATCH * 0.9);
  });
});

let nextPr = 1;
const freshPr = () => 600_000 + nextPr++;

describe.each(paths)("prototype keys on the %s path", (path) => {
  /** A raw peer on `path` for room `pr`, connected. */
  async function peer(pr: number): Promise<RawClient> {
    const raw = await openRawWs(worker.url, rawQuery(path, pr));
    await raw.connect();
    return raw;
  }

  it("a literal __proto__, constructor or prototype key never reaches a room as a field, nor changes the server's objects", async () => {
    const pr = freshPr();
    const observer = await peer(pr);
    observer.emit("join-pr-room", { pullRequestId: pr, username: "observer" }, 0);
    expect(await observer.ack(0)).toMatchObject({ ok: true });
    const mallory = await peer(pr);
    const send = (ackId: number, frame: string) => {
      mallory.send(frame);
      return mallory.ack(ackId);
    };

    // Fields that exist only in a "__proto__" key are no fields: no join, no message.
    expect(await send(1, withRawKey("join-pr-room", {}, `"__proto__":{"pullRequestId":${pr},"username":"mallory"}`, "1"))).toMatchObject({
      ok: false,
      error: { code: "invalid_payload" },
    });
    // Beside real fields it is ignored: the real username is the one that joins.
    expect(await send(2, withRawKey("join-pr-room", { pullRequestId: pr, username: "proto" }, '"__proto__":{"username":"admin"}', "2"))).toMatchObject({
      ok: true,
      users: ["observer", "proto"],
    });
    expect(await send(3, withRawKey("send-message-to-pr-room", { pullRequestId: pr, username: "proto" }, '"__proto__":{"message":"smuggled"}', "3"))).toMatchObject({
      ok: false,
      error: { code: "invalid_payload" },
    });
    const hostileKeys = [
      '"__proto__":{"polluted":true,"clientMessageId":"smuggled","id":"forged","seq":0}',
      '"constructor":{"prototype":{"polluted":true,"clientMessageId":"smuggled"}}',
      '"prototype":{"polluted":true}',
    ].join(",");
    const sent = await send(4, withRawKey("send-message-to-pr-room", { pullRequestId: pr, username: "proto", message: "hello" }, hostileKeys, "4"));
    expect(sent).toMatchObject({ ok: true, seq: 1 });
    expect(Object.keys(sent).sort()).toEqual(["id", "ok", "seq"]);

    // Had any of that reached Object.prototype in the room (a clientMessageId of "smuggled"),
    // plain sends would be taken for resends of one message: each must be a message of its own.
    mallory.emit("send-message-to-pr-room", { pullRequestId: pr, username: "proto", message: "first" }, 5);
    mallory.emit("send-message-to-pr-room", { pullRequestId: pr, username: "proto", message: "second" }, 6);
    const [first, second] = [await mallory.ack(5), await mallory.ack(6)];
    expect([first.seq, second.seq]).toEqual([2, 3]);
    expect(first.id).not.toBe(second.id);

    // What the room broadcast has exactly the documented fields.
    for (const expected of ["hello", "first", "second"]) {
      const frame = (await observer.take((f) => typeof f === "string" && f.startsWith('42["pr-room-message"'))) as string;
      expect(frame).not.toMatch(/polluted|__proto__|constructor|prototype|smuggled|forged/);
      const [, payload] = JSON.parse(frame.slice(2));
      expect(Object.keys(payload).sort()).toEqual(["id", "mentions", "message", "pullRequestId", "sentAt", "seq", "username"]);
      expect(payload).toMatchObject({ pullRequestId: pr, username: "proto", message: expected });
    }
    observer.emit("get-pr-room-users", { pullRequestId: pr }, 7);
    expect(await observer.ack(7)).toEqual({ ok: true, pullRequestId: pr, users: ["observer", "proto"] });
    observer.close();
    mallory.close();
    expectCleanLogs();
  });
});
