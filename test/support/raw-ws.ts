/** Raw Engine.IO peers from Node, over the runtime's own WebSocket. */
import { RawClient } from "../shared/raw-client.js";

export { RawClient };

export async function openRawWs(baseUrl: string, query = "EIO=4&transport=websocket"): Promise<RawClient> {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/socket.io/?${query}`);
  ws.binaryType = "arraybuffer";
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve(), { once: true });
    ws.addEventListener("error", () => reject(new Error("WebSocket failed to open")), { once: true });
  });
  return new RawClient(ws);
}
