/** Opens raw Engine.IO peers on the Worker from inside workerd, and small helpers for chat tests. */
import { exports } from "cloudflare:workers";
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

/** The two ways in: the gateway (no room in the URL) and the direct path (the room in the URL). */
export const PATHS = [
  ["gateway", (_pr: number | string) => "EIO=4&transport=websocket"],
  ["direct", (pr: number | string) => `EIO=4&transport=websocket&pullRequestId=${pr}`],
] as const;

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
