/** Opens raw Engine.IO peers on the Worker from inside workerd, and small helpers for chat tests. */
import { exports } from "cloudflare:workers";
import { eachPath, rawQuery } from "../shared/paths.js";
import { RawClient } from "../shared/raw-client.js";

export { RawClient };

/** Opens a WebSocket to the Worker (the open packet is the first frame). */
export async function openRaw(query = "EIO=4&transport=websocket", headers: Record<string, string> = {}): Promise<RawClient> {
  const response = await exports.default.fetch(`http://localhost/socket.io/?${query}`, {
    headers: { Upgrade: "websocket", ...headers },
  });
  if (!response.webSocket) throw new Error(`no upgrade: ${response.status} ${await response.text()}`);
  response.webSocket.accept();
  return new RawClient(response.webSocket);
}

/** Opens and CONNECTs to "/". */
export async function connectedRaw(auth?: object): Promise<{ client: RawClient; sid: string }> {
  const client = await openRaw();
  return { client, sid: await client.connect(auth) };
}

/** The two ways in (test/shared/paths.ts), as `[name, queryFor]`: the gateway (no room in the URL) and the direct path (the room in the URL). */
export const PATHS = eachPath(rawQuery);

export type QueryFor = (pr: number | string) => string;

let ackIds = 100;
/** Emits with an ack and resolves with the ack's first argument. */
export async function call(client: RawClient, event: string, payload: unknown): Promise<any> {
  const id = ackIds++;
  client.emit(event, payload, id);
  // Generous: the first request of a test file may start the room objects cold.
  return client.ack(id, 10_000);
}

/** A client CONNECTed and joined to `pr` as `username`, on the path `queryFor` picks. */
export async function member(queryFor: QueryFor, pr: number | string, username: string): Promise<RawClient> {
  const client = await openRaw(queryFor(pr));
  await client.connect();
  const ack = await call(client, "join-pr-room", { pullRequestId: pr, username });
  if (!ack?.ok) throw new Error(`join refused: ${JSON.stringify(ack)}`);
  return client;
}

/** CONNECTs with `auth` (a recovery's pid and offset, say) and returns the CONNECT answer's payload. */
export async function connectWith(client: RawClient, auth: object): Promise<{ sid: string; pid?: string }> {
  await client.next(); // open packet
  client.send(`40${JSON.stringify(auth)}`);
  const reply = (await client.next()) as string;
  if (!reply.startsWith("40{")) throw new Error(`CONNECT refused: ${reply}`);
  return JSON.parse(reply.slice(2));
}

/** The next message event as [payload, offset]. */
export async function nextMessage(client: RawClient): Promise<[any, string | undefined]> {
  const [, payload, offset] = (await client.nextEvent("pr-room-message")) as unknown as [string, any, string | undefined];
  return [payload, offset];
}
