/**
 * The conformance fixture (our session code with the official socket.io protocol test
 * fixture's handlers) served by `wrangler dev -c test/fixtures/conformance/wrangler.toml`,
 * checked frame by frame as the official protocol test suite does, and with the real
 * client, on both paths: sessions held by the Worker, and by a hibernating Durable Object.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeAll, connected, client, once } from "../support/client.js";
import { paths, rawQuery } from "../support/paths.js";
import { openRawWs, type RawClient } from "../support/raw-ws.js";
import { wranglerDev } from "../support/wrangler-dev.js";
import type { ServedWorker } from "../support/worker.js";

let fixture: ServedWorker;
const raws: RawClient[] = [];

beforeAll(async () => {
  fixture = await wranglerDev("test/fixtures/conformance/wrangler.toml");
});
afterAll(async () => {
  closeAll();
  for (const raw of raws) raw.close();
  await fixture?.close();
});

/** The pull request the direct path names in the URL: its Durable Object holds those sessions. */
const PR = 1;

describe.each(paths)("on the %s path", (path, optionsFor) => {
  async function raw(): Promise<RawClient> {
    const peer = await openRawWs(fixture.url, rawQuery(path, PR));
    raws.push(peer);
    return peer;
  }

  const clientOptions = optionsFor(PR);

  async function handshakeStatus(query: string) {
    const response = await fetch(`${fixture.url}/socket.io/?${query}`);
    return { status: response.status, body: await response.json() };
  }

  describe("Engine.IO", () => {
    it("opens with the fixture's settings", async () => {
      const peer = await raw();
      const open = (await peer.next()) as string;
      expect(open.startsWith("0{")).toBe(true);
      expect(JSON.parse(open.slice(1))).toEqual({
        sid: expect.any(String),
        upgrades: [],
        pingInterval: 300,
        pingTimeout: 200,
        maxPayload: 1000000,
      });
    });

    it("refuses EIO=3 and unknown transports with the reference JSON", async () => {
      expect(await handshakeStatus("EIO=3&transport=websocket")).toEqual({
        status: 400,
        body: { code: 5, message: "Unsupported protocol version" },
      });
      expect(await handshakeStatus("EIO=4&transport=abc")).toEqual({ status: 400, body: { code: 0, message: "Transport unknown" } });
      // Polling is served (the official suites check it: socket.io-protocol.test.ts).
      const polling = await fetch(`${fixture.url}/socket.io/?EIO=4&transport=polling`);
      expect(polling.status).toBe(200);
      expect(await polling.text()).toMatch(/^0\{"sid":"[\w-]+","upgrades":\["websocket"\]/);
    });

    it("pings, and closes when the pong does not come", async () => {
      const peer = await raw();
      peer.autoPong = false;
      await peer.next();
      peer.send("40");
      await peer.next(); // CONNECT
      await peer.next(); // auth
      expect(await peer.next({ timeoutMs: 1000 })).toBe("2");
      peer.send("3");
      expect(await peer.next({ timeoutMs: 1000 })).toBe("2");
      await peer.waitClosed(1000);
      expect(peer.closed).toBeDefined();
    });

    it("closes on a close packet", async () => {
      const peer = await raw();
      await peer.next();
      peer.send("1");
      await peer.waitClosed();
    });

    it("closes a connection that does not CONNECT within connectTimeout", async () => {
      const peer = await raw();
      await peer.next();
      const started = Date.now();
      await peer.waitClosed(3000);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    });
  });

  describe("Socket.IO", () => {
    it("connects to the main namespace and emits auth ({} when none)", async () => {
      const peer = await raw();
      await peer.next();
      peer.send("40");
      expect(await peer.next()).toMatch(/^40\{"sid":"[\w-]+"\}$/);
      expect(await peer.next()).toBe('42["auth",{}]');
    });

    it("passes the CONNECT payload through as auth, on / and /custom", async () => {
      const peer = await raw();
      await peer.next();
      peer.send('40{"token":"123"}');
      expect(await peer.next()).toMatch(/^40\{"sid"/);
      expect(await peer.next()).toBe('42["auth",{"token":"123"}]');
      peer.send('40/custom,{"token":"abc"}');
      expect(await peer.next()).toMatch(/^40\/custom,\{"sid":"[\w-]+"\}$/);
      expect(await peer.next()).toBe('42/custom,["auth",{"token":"abc"}]');
    });

    it("refuses an unknown namespace and stays usable", async () => {
      const peer = await raw();
      await peer.next();
      peer.send("40/random,");
      expect(await peer.next()).toBe('44/random,{"message":"Invalid namespace"}');
      peer.send("40");
      expect(await peer.next()).toMatch(/^40\{"sid"/);
    });

    it("closes on an invalid CONNECT payload", async () => {
      const peer = await raw();
      await peer.next();
      peer.send('40"not an object"');
      await peer.waitClosed();
    });

    it("leaves a namespace on DISCONNECT and keeps pinging", async () => {
      const peer = await raw();
      peer.autoPong = false;
      await peer.next();
      peer.send("40");
      await peer.next();
      await peer.next();
      peer.send("41");
      expect(await peer.next({ timeoutMs: 1000 })).toBe("2");
      peer.send("3");
      // Events for a namespace the client left are a protocol error, as before CONNECT.
      peer.send('42["message"]');
      await peer.waitClosed();
    });

    it("echoes message as message-back, binary included", async () => {
      const peer = await raw();
      await peer.connect();
      await peer.next(); // auth
      peer.send('42["message",1,"2",{"3":[true]}]');
      expect(await peer.next()).toBe('42["message-back",1,"2",{"3":[true]}]');
      peer.send('451-["message",{"_placeholder":true,"num":0}]');
      peer.send(new Uint8Array([1, 2, 3]).buffer);
      expect(await peer.next()).toBe('451-["message-back",{"_placeholder":true,"num":0}]');
      expect([...new Uint8Array((await peer.next()) as ArrayBuffer)]).toEqual([1, 2, 3]);
    });

    it("acks message-with-ack with its arguments, binary included", async () => {
      const peer = await raw();
      await peer.connect();
      await peer.next();
      peer.send('42456["message-with-ack",1,"2",{"3":[false]}]');
      expect(await peer.next()).toBe('43456[1,"2",{"3":[false]}]');
      peer.send('451-789["message-with-ack",{"_placeholder":true,"num":0}]');
      peer.send(new Uint8Array([4, 5]).buffer);
      expect(await peer.next()).toBe('461-789[{"_placeholder":true,"num":0}]');
      expect([...new Uint8Array((await peer.next()) as ArrayBuffer)]).toEqual([4, 5]);
    });

    it("asks the client for acks too (server → client ack ids)", async () => {
      const peer = await raw();
      await peer.connect();
      await peer.next();
      peer.send('42["server-ack","question"]');
      expect(await peer.next()).toBe('420["ack-request","question"]');
      peer.send('430["answer"]');
      expect(await peer.next()).toBe('42["ack-answered","answer"]');
    });
  });

  describe("socket.io-client against the fixture", () => {
    it("gets auth, message-back with binary, acks both ways, and the custom namespace", async () => {
      const main = client(fixture.url, { auth: { token: "t1" }, ...clientOptions });
      const [auth] = await once(main, "auth");
      expect(auth).toEqual({ token: "t1" });

      const back = once(main, "message-back");
      main.emit("message", "text", Buffer.from([7, 8, 9]));
      const [text, bytes] = await back;
      expect(text).toBe("text");
      expect([...new Uint8Array(bytes)]).toEqual([7, 8, 9]);

      expect(await main.timeout(3000).emitWithAck("message-with-ack", { a: 1 })).toEqual({ a: 1 });

      main.on("ack-request", (question: string, answer: (reply: string) => void) => answer(`${question}!`));
      const answered = once(main, "ack-answered");
      main.emit("server-ack", "why");
      expect(await answered).toEqual(["why!"]);

      const custom = client(`${fixture.url}/custom`, clientOptions);
      expect(await once(custom, "auth")).toEqual([{}]);

      const nowhere = client(`${fixture.url}/nowhere`, clientOptions);
      expect((await once(nowhere, "connect_error"))[0].message).toBe("Invalid namespace");
      expect((await connected(fixture.url, clientOptions)).connected).toBe(true);
    });
  });
});
