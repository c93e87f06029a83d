/** The gateway session inside workerd: handshake, heartbeat, limits, namespaces, framing errors. */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { connectedRaw, openRaw } from "./raw-client.js";

async function handshake(query: string, headers: Record<string, string> = { Upgrade: "websocket" }) {
  const response = await exports.default.fetch(`http://localhost/socket.io/?${query}`, { headers });
  return { status: response.status, body: (await response.json()) as { code: number; message: string } };
}

describe("handshake", () => {
  it("refuses other Engine.IO versions as the reference server does", async () => {
    expect(await handshake("EIO=3&transport=websocket")).toEqual({
      status: 400,
      body: { code: 5, message: "Unsupported protocol version" },
    });
  });

  it("refuses unknown transports", async () => {
    expect(await handshake("EIO=4&transport=carrier-pigeon")).toEqual({
      status: 400,
      body: { code: 0, message: "Transport unknown" },
    });
  });

  it("serves polling too (test/worker/polling.test.ts)", async () => {
    const response = await exports.default.fetch("http://localhost/socket.io/?EIO=4&transport=polling");
    expect(response.status).toBe(200);
    expect(await response.text()).toMatch(/^0\{"sid":/);
  });

  it("refuses a websocket handshake without an upgrade, and unknown sessions", async () => {
    expect((await handshake("EIO=4&transport=websocket", {})).body).toEqual({ code: 3, message: "Bad request" });
    expect((await handshake("EIO=4&transport=websocket&sid=abc")).body).toEqual({ code: 1, message: "Session ID unknown" });
  });

  it("opens with sid, no upgrades and the configured timings", async () => {
    const client = await openRaw();
    const open = await client.next();
    expect(typeof open).toBe("string");
    expect((open as string)[0]).toBe("0");
    const body = JSON.parse((open as string).slice(1));
    expect(body).toEqual({ sid: expect.any(String), upgrades: [], pingInterval: 300, pingTimeout: 200, maxPayload: 65536 });
    expect(body.sid.length).toBeGreaterThanOrEqual(16);
    client.close();
  });
});

describe("heartbeat", () => {
  it("pings every pingInterval and stays open while the client answers", async () => {
    const client = await openRaw();
    client.autoPong = false;
    await client.next();
    client.send("40");
    await client.next();
    const started = Date.now();
    for (let i = 0; i < 4; i++) {
      expect(await client.next({ timeoutMs: 1000 })).toBe("2");
      client.send("3");
    }
    // Four pings at ~300 ms each: well past 2 × (pingInterval + pingTimeout).
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(client.closed).toBeUndefined();
    client.close();
  });

  it("closes a client whose pong does not come within pingTimeout", async () => {
    const client = await openRaw();
    client.autoPong = false;
    await client.next();
    client.send("40");
    await client.next();
    expect(await client.next({ timeoutMs: 1000 })).toBe("2");
    const pingedAt = Date.now();
    const closed = await client.waitClosed(2000);
    expect(Date.now() - pingedAt).toBeGreaterThanOrEqual(150);
    expect(closed.reason).toContain("ping timeout");
  });

  it("forgives a stray pong, but closes a client that keeps sending pongs nobody asked for", async () => {
    // Each pong proves the client read what came before a ping: unasked ones would fake that proof.
    const { client } = await connectedRaw();
    client.autoPong = false;
    client.send("3");
    expect(await client.next({ timeoutMs: 1000 })).toBe("2"); // still pinged as usual
    client.send("3");
    for (let i = 0; i < 4; i++) client.send("3");
    expect((await client.waitClosed()).code).toBe(1002);
  });

  it("treats a client ping as a protocol violation", async () => {
    const { client } = await connectedRaw();
    client.send("2");
    expect((await client.waitClosed()).code).toBe(1002);
  });

  it("closes on the close packet", async () => {
    const { client } = await connectedRaw();
    client.send("1");
    await client.waitClosed();
    expect(client.closed).toBeDefined();
  });

  it("closes a session that never CONNECTs within connectTimeout", async () => {
    const client = await openRaw();
    await client.next();
    const opened = Date.now();
    await client.waitClosed(3000);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(900);
  });
});

describe("payload limit", () => {
  it("closes only the client whose frame exceeds maxPayload, with 1009", async () => {
    const { client: big } = await connectedRaw();
    const { client: bystander } = await connectedRaw();
    big.send(`42["typing",${JSON.stringify("x".repeat(70_000))}]`);
    expect((await big.waitClosed()).code).toBe(1009);
    bystander.emit("leave-pr-room", { pullRequestId: 1, username: "ok" }, 1);
    expect(await bystander.ack(1)).toEqual({ ok: true, pullRequestId: 1 });
    bystander.close();
  });
});

describe("Socket.IO namespaces", () => {
  it("answers CONNECT with a fresh socket id, not the Engine.IO sid", async () => {
    const client = await openRaw();
    const engineSid = JSON.parse(((await client.next()) as string).slice(1)).sid;
    client.send("40");
    const connect = (await client.next()) as string;
    expect(connect).toMatch(/^40\{"sid":"[\w-]+","pid":"[\w-]{40}"\}$/);
    expect(JSON.parse(connect.slice(2)).sid).not.toBe(engineSid);
    client.close();
  });

  it("refuses an unknown namespace and stays usable", async () => {
    const client = await openRaw();
    await client.next();
    client.send("40/nope,");
    expect(await client.next()).toBe('44/nope,{"message":"Invalid namespace"}');
    client.send("40");
    expect(await client.next()).toMatch(/^40\{"sid"/);
    client.close();
  });

  it("leaves the namespace on DISCONNECT but keeps the transport (and pings)", async () => {
    const { client } = await connectedRaw();
    client.autoPong = false;
    client.send("41");
    expect(await client.next({ timeoutMs: 1000 })).toBe("2");
    client.send("3");
    client.send("40");
    expect(await client.next()).toMatch(/^40\{"sid"/);
    client.close();
  });

  it.each([
    ["an event before CONNECT", '42["join-pr-room",{}]'],
    ["an undecodable packet", "40", "42[not json"],
    ["an unknown packet type", "49"],
    ["an event with a reserved name", '40', '42["disconnect"]'],
    ["a second CONNECT", "40", "40"],
    ["an unknown Engine.IO type", "40", "9"],
    ["binary where text belongs", "40", new Uint8Array([1, 2, 3]).buffer],
    ["text while binary attachments are due", "40", '451-["typing",{"_placeholder":true,"num":0}]', '42["x"]'],
  ])("closes the session on %s, never throwing", async (_, ...frames) => {
    const client = await openRaw();
    await client.next();
    for (const frame of frames) client.send(frame);
    expect((await client.waitClosed()).code).toBe(1002);
  });

  it("acks binary events once their attachments arrive", async () => {
    const { client } = await connectedRaw();
    client.send('451-7["typing",{"_placeholder":true,"num":0}]');
    client.send(new Uint8Array([1]).buffer);
    const ack = await client.ack(7);
    expect(ack).toMatchObject({ ok: false, error: { code: "invalid_payload" } });
    client.close();
  });
});
