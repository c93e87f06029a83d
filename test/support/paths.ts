/** The two paths (test/shared/paths.ts) for socket.io-client, for `describe.each(paths)`. */
import type { ManagerOptions, SocketOptions } from "socket.io-client";
import { eachPath } from "../shared/paths.js";

export { rawQuery, type PathName } from "../shared/paths.js";

export type ClientOptions = Partial<ManagerOptions & SocketOptions>;

/** `[name, optionsFor]`: `optionsFor(pr)` are the client options that take a client to room `pr` on that path. */
export const paths = eachPath((path, pr): ClientOptions => (path === "direct" ? { query: { pullRequestId: String(pr) } } : {}));
