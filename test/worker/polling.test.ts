/**
 * HTTP long-polling inside workerd, request by request: the handshake, POST/GET exchange,
 * payload framing, engine.io's errors and status codes, CORS and origins, the heartbeat,
 * close, and the upgrade to a WebSocket held by the Worker.
 */
import { listDurableObjectIds } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import app from "../../src/index.js";
import { MAX_WAITING_FRAMES } from "../../src/gateway/polling/upgrade.js";
import { until } from "../shared/until.js";
import { RawClient } from "./raw-client.js";

const BASE = "http://localhost/socket.io/?EIO=4&transport=polling";

async function open(headers: Record<string, string> = {}) {
  const response = await exports.default.fetch(BASE, { headers });
  const body = await response.text();
  expect(response.status, body).toBe(200);
  return { sid: JSON.parse(body.slice(1)).sid as string, body, response };
}

const poll = (sid: string, init?: RequestInit) => exports.default.fetch(`${BASE}&sid=${sid}`, init);
const post = (sid: string, body: BodyInit) => poll(sid, { method: "POST", body });

/** The next GET's payload, split into packets. */
async function next(sid: string): Promise<string[]> {
  const response = await poll(sid);
  const body = await response.text();
  if (response.status !== 200) throw new Error(`GET ${response.status}: ${body}`);
  return body.split("\x1e");
}

/** GETs until a packet matches, skipping pings (answered); returns that packet. */
async function nextMatching(sid: string, match: (packet: string) => boolean): Promise<string> {
  for (let i = 0; i < 20; i++) {
    for (const packet of await next(sid)) {
      if (packet === "2") await post(sid, "3");
      else if (match(packet)) return packet;
    }
  }
  throw new Error("no matching packet");
}

async function errorOf(response: Response) {
  return { status: response.status, body: await response.json() };
}

/** An open session CONNECTed to the chat namespace. */
async function connected(): Promise<string> {
  const { sid } = await open();
  expect((await post(sid, "40")).status).toBe(200);
  expect(await nextMatching(sid, (packet) => packet.startsWith("40"))).toMatch(/^40\{"sid":"[\w-]+","pid":"[\w-]+"\}$/);
  return sid;
}

describe("handshake", () => {
  it("opens by GET with the open packet, offering the upgrade", async () => {
    const { body, response } = await open();
    expect(response.headers.get("Content-Type")).toBe("text/plain; charset=UTF-8");
    expect(JSON.parse(body.slice(1))).toEqual({
      sid: expect.stringMatching(/^[\w-]{20}$/),
      upgrades: ["websocket"],
      pingInterval: 300,
      pingTimeout: 200,
      maxPayload: 65536,
    });
  });

  it("refuses other methods, transports, versions and unknown sessions as engine.io does", async () => {
    expect(await errorOf(await exports.default.fetch(BASE, { method: "POST", body: "40" }))).toEqual({
      status: 400,
      body: { code: 2, message: "Bad handshake method" },
    });
    expect(await errorOf(await exports.default.fetch(BASE, { method: "PUT" }))).toEqual({ status: 400, body: { code: 2, message: "Bad handshake method" } });
    expect(await errorOf(await exports.default.fetch("http://localhost/socket.io/?EIO=4&transport=xhr"))).toEqual({
      status: 400,
      body: { code: 0, message: "Transport unknown" },
    });
    expect(await errorOf(await exports.default.fetch("http://localhost/socket.io/?EIO=3&transport=polling"))).toEqual({
      status: 400,
      body: { code: 5, message: "Unsupported protocol version" },
    });
    for (const sid of ["AAAAAAAAAAAAAAAAAAAA", "not-a-sid", "x".repeat(200)]) {
      expect(await errorOf(await poll(sid))).toEqual({ status: 400, body: { code: 1, message: "Session ID unknown" } });
      expect(await errorOf(await post(sid, "3"))).toEqual({ status: 400, body: { code: 1, message: "Session ID unknown" } });
    }
  });
});

describe("exchange", () => {
  it("carries packets both ways, several per request", async () => {
    const sid = await connected();
    // Two events with acks in one POST; their answers come back over GETs.
    const sent = await post(sid, '420["join-pr-room",{"pullRequestId":71,"username":"ann"}]\x1e421["get-pr-room-users",{"pullRequestId":71}]');
    expect(sent.status).toBe(200);
    expect(sent.headers.get("Content-Type")).toBe("text/html");
    expect(await sent.text()).toBe("ok");
    expect(await nextMatching(sid, (packet) => packet.startsWith("430"))).toContain('"ok":true');
    expect(await nextMatching(sid, (packet) => packet.startsWith("431"))).toContain('"users":["ann"]');
  });

  it("delivers everything queued in one GET, \\x1e-joined", async () => {
    const sid = await connected();
    await post(sid, '420["join-pr-room",{"pullRequestId":72,"username":"bo"}]');
    await nextMatching(sid, (packet) => packet.startsWith("430"));
    const batch = Array.from({ length: 5 }, (_, i) => `42${i + 1}["send-message-to-pr-room",{"pullRequestId":72,"username":"bo","message":"m${i}"}]`);
    await post(sid, batch.join("\x1e"));
    const seen: string[] = [];
    for (let i = 0; i < 10 && seen.filter((packet) => packet.startsWith("43")).length < 5; i++) {
      const packets = await next(sid);
      if (packets.length > 1) expect(packets.every((packet) => packet.length > 0)).toBe(true);
      seen.push(...packets);
    }
    const messages = seen.filter((packet) => packet.startsWith('42["pr-room-message"')).map((packet) => JSON.parse(packet.slice(2))[1].message);
    expect(messages).toEqual(["m0", "m1", "m2", "m3", "m4"]);
  });

  it("reads binary as b + base64 (an attachment)", async () => {
    const sid = await connected();
    // A binary event: its attachment arrives as b+base64 in the same payload; the chat refuses the shape.
    await post(sid, '451-0["typing",{"_placeholder":true,"num":0}]\x1ebAQID');
    expect(await nextMatching(sid, (packet) => packet.startsWith("430"))).toContain("invalid_payload");
    // A binary packet with no binary packet pending is a protocol error, as on a WebSocket.
    await post(sid, "bAQID");
    await until(async () => (await poll(sid)).status === 400, 3000, "a GET refused with 400", 20);
  });

  it("closes the session when a second GET comes while one is held", async () => {
    const { sid } = await open();
    const first = poll(sid);
    // The first must be held before the second comes: wait until the object has it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const second = await poll(sid);
    expect(second.status).toBe(400);
    const answered = await first;
    expect(answered.status).toBe(200);
    expect(await answered.text()).toBe("1");
    expect(await errorOf(await poll(sid))).toEqual({ status: 400, body: { code: 1, message: "Session ID unknown" } });
  });

  it("refuses a POST over MAX_PAYLOAD_BYTES with 413, and the session goes on", async () => {
    const sid = await connected();
    const big = `42["typing",${JSON.stringify("x".repeat(70_000))}]`;
    expect((await post(sid, big)).status).toBe(413);
    // Streamed with no length: cut off as it passes the limit.
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode("4".repeat(8192)));
        controller.close();
      },
    });
    expect((await poll(sid, { method: "POST", body: stream })).status).toBe(413);
    await post(sid, '421["get-pr-room-users",{"pullRequestId":1}]');
    expect(await nextMatching(sid, (packet) => packet.startsWith("431"))).toContain("not_joined");
  });

  it("closes on an undecodable payload", async () => {
    const { sid } = await open();
    expect((await post(sid, "abc")).status).toBe(400);
    expect(await errorOf(await poll(sid))).toEqual({ status: 400, body: { code: 1, message: "Session ID unknown" } });
  });
});

describe("heartbeat and close", () => {
  it("pings through a held GET and goes on while pongs come by POST", async () => {
    const { sid } = await open();
    await post(sid, "40");
    await nextMatching(sid, (packet) => packet.startsWith("40"));
    for (let i = 0; i < 3; i++) {
      expect(await next(sid)).toEqual(["2"]);
      expect((await post(sid, "3")).status).toBe(200);
    }
  });

  it("ends a session whose pong does not come: the held GET gets 1, then 400", async () => {
    const { sid } = await open();
    expect(await next(sid)).toEqual(["2"]);
    const held = await poll(sid);
    expect(await held.text()).toBe("1");
    expect(await errorOf(await poll(sid))).toEqual({ status: 400, body: { code: 1, message: "Session ID unknown" } });
  });

  it("answers the held GET with 6 when the client closes", async () => {
    const { sid } = await open();
    const held = poll(sid);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await (await post(sid, "1")).text()).toBe("ok");
    expect(await (await held).text()).toBe("6");
    expect((await poll(sid)).status).toBe(400);
  });
});

describe("origins and CORS", () => {
  const guarded = { ...env, ALLOWED_ORIGINS: "https://good.example" };
  const call = (url: string, init: RequestInit = {}) => app.fetch(new Request(url, init), guarded, { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext);

  it("refuses a foreign origin with 403 before any session exists", async () => {
    const before = (await listDurableObjectIds(env.POLLING_SESSION)).length;
    const refused = await call(BASE, { headers: { Origin: "https://evil.example" } });
    expect(await errorOf(refused)).toEqual({ status: 403, body: { code: 4, message: "Forbidden" } });
    expect(refused.headers.get("Access-Control-Allow-Origin")).toBeNull();
    expect((await call(BASE, { method: "OPTIONS", headers: { Origin: "https://evil.example" } })).status).toBe(403);
    expect((await listDurableObjectIds(env.POLLING_SESSION)).length).toBe(before);
  });

  it("echoes an allowed origin with credentials, and answers preflights", async () => {
    const opened = await call(BASE, { headers: { Origin: "https://good.example" } });
    expect(opened.status).toBe(200);
    expect(opened.headers.get("Access-Control-Allow-Origin")).toBe("https://good.example");
    expect(opened.headers.get("Access-Control-Allow-Credentials")).toBe("true");
    expect(opened.headers.get("Vary")).toContain("Origin");
    const sid = JSON.parse((await opened.text()).slice(1)).sid;
    const posted = await call(`${BASE}&sid=${sid}`, { method: "POST", body: "40", headers: { Origin: "https://good.example" } });
    expect(posted.headers.get("Access-Control-Allow-Origin")).toBe("https://good.example");
    const unknown = await call(`${BASE}&sid=AAAAAAAAAAAAAAAAAAAA`, { headers: { Origin: "https://good.example" } });
    expect(unknown.status).toBe(400);
    expect(unknown.headers.get("Access-Control-Allow-Origin")).toBe("https://good.example");

    const preflight = await call(BASE, {
      method: "OPTIONS",
      headers: { Origin: "https://good.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("Access-Control-Allow-Origin")).toBe("https://good.example");
    expect(preflight.headers.get("Access-Control-Allow-Credentials")).toBe("true");
    expect(preflight.headers.get("Access-Control-Allow-Methods")).toBe("GET, POST");
    expect(preflight.headers.get("Access-Control-Allow-Headers")).toBe("content-type");
  });

  it("echoes any origin when ALLOWED_ORIGINS is unset; none without Origin", async () => {
    const { response } = await open({ Origin: "https://anywhere.example" });
    expect(response.headers.get("Access-Control-Allow-Origin")).toBe("https://anywhere.example");
    expect(response.headers.get("Access-Control-Allow-Credentials")).toBe("true");
    expect((await open()).response.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });
});

describe("upgrade", () => {
  async function websocket(sid: string): Promise<Response> {
    return exports.default.fetch(`http://localhost/socket.io/?EIO=4&transport=websocket&sid=${sid}`, { headers: { Upgrade: "websocket" } });
  }

  it("moves the session to a WebSocket: 2probe, 3probe, 6 for polling, 5, then the same session", async () => {
    const sid = await connected();
    await post(sid, '420["join-pr-room",{"pullRequestId":73,"username":"cy"}]');
    await nextMatching(sid, (packet) => packet.startsWith("430"));
    const held = poll(sid);
    const response = await websocket(sid);
    expect(response.status).toBe(101);
    response.webSocket!.accept();
    const client = new RawClient(response.webSocket!);
    client.send("2probe");
    expect(await client.next()).toBe("3probe");
    expect(await (await held).text()).toBe("6");
    client.send("5");
    // The same Socket.IO connection, in the same room, now on the WebSocket.
    client.emit("send-message-to-pr-room", { pullRequestId: 73, username: "cy", message: "hi" }, 1);
    const [, message] = await client.nextEvent("pr-room-message");
    expect(message).toMatchObject({ pullRequestId: 73, username: "cy", message: "hi" });
    expect((await client.ack(1)).ok).toBe(true);
    // Polling for it is a transport mismatch now; a second WebSocket is accepted and closed.
    expect(await errorOf(await poll(sid))).toEqual({ status: 400, body: { code: 3, message: "Bad request" } });
    const second = await websocket(sid);
    expect(second.status).toBe(101);
    second.webSocket!.accept();
    await new RawClient(second.webSocket!).waitClosed(2000);
    client.close();
  });

  it("refuses an upgrade for an unknown session", async () => {
    expect(await errorOf(await websocket("AAAAAAAAAAAAAAAAAAAA"))).toEqual({ status: 400, body: { code: 1, message: "Session ID unknown" } });
  });

  it("goes on polling when the WebSocket leaves before 5", async () => {
    const sid = await connected();
    const response = await websocket(sid);
    response.webSocket!.accept();
    const client = new RawClient(response.webSocket!);
    client.send("2probe");
    expect(await client.next()).toBe("3probe");
    expect(await next(sid)).toEqual(["6"]);
    client.close();
    // Back to polling: a request still works (users ack, not joined).
    await until(async () => {
      await post(sid, '429["get-pr-room-users",{"pullRequestId":1}]');
      return (await nextMatching(sid, (packet) => packet.startsWith("43") || packet === "6")).startsWith("439");
    }, 5000, "polling again", 20);
  });
});

describe("what a client sends while its session moves", () => {
  async function movingSession(): Promise<RawClient> {
    const sid = await connected();
    const response = await exports.default.fetch(`http://localhost/socket.io/?EIO=4&transport=websocket&sid=${sid}`, { headers: { Upgrade: "websocket" } });
    response.webSocket!.accept();
    const client = new RawClient(response.webSocket!);
    client.send("2probe");
    expect(await client.next()).toBe("3probe");
    return client;
  }

  it("is held to MAX_WAITING_FRAMES: past it the WebSocket closes 1013 once the session is here, and the client recovers", async () => {
    const client = await movingSession();
    client.send("5");
    // All in one turn, before the take-over is done: they wait, up to the bound.
    for (let i = 0; i <= MAX_WAITING_FRAMES; i++) client.send('42["typing",{"pullRequestId":1,"username":"cy"}]');
    expect(await client.waitClosed(5000)).toMatchObject({ code: 1013, reason: "too much sent during the upgrade" });
  });

  it("is held to maxPayload on arrival: a frame over it closes 1009", async () => {
    const client = await movingSession();
    client.send("5");
    client.send(`42["send-message-to-pr-room",${JSON.stringify({ pullRequestId: 1, username: "cy", message: "x".repeat(70_000) })}]`);
    expect(await client.waitClosed(5000)).toMatchObject({ code: 1009 });
  });
});

describe("the session's bill", () => {
  it("logs polling_stats when the session ends, with the time it was awake (it cannot hibernate while open)", async () => {
    const lines: string[] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(String(line)));
    try {
      const sid = await connected();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await post(sid, "1")).status).toBe(200);
      await until(() => lines.some((line) => line.includes('"polling_stats"') && line.includes(sid)), 3000, "the session's polling_stats line");
    } finally {
      spy.mockRestore();
    }
    const stats = JSON.parse(lines.find((line) => line.includes('"polling_stats"'))!);
    expect(stats).toMatchObject({ why: "end", fetches: expect.any(Number) });
    expect(stats.fetches).toBeGreaterThanOrEqual(3);
    expect(stats.awakeMs).toBeGreaterThanOrEqual(50);
  });
});
