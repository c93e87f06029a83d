/** Opens raw Engine.IO peers on the Worker from inside workerd. */
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
