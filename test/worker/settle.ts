/**
 * Each workers test file ends by letting its objects fall silent: a room (or a recovery record)
 * that logs after the file's environment is torn down makes workerd report an
 * EnvironmentTeardownError (its log line has nowhere to go). First 300 ms for the last test's
 * closing sockets; then every object's pending alarm is deleted, since each alarm writes a
 * stats line (util/meter.ts) and the last ones would come seconds later. Storage is per file.
 */
import { env } from "cloudflare:workers";
import { listDurableObjectIds, runInDurableObject } from "cloudflare:test";
import { afterAll } from "vitest";

afterAll(async () => {
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (const namespace of [env.PR_ROOM, env.CONNECTION_RECORD] as DurableObjectNamespace[]) {
    for (const id of await listDurableObjectIds(namespace)) {
      await runInDurableObject(namespace.get(id), (_: unknown, state: DurableObjectState) => state.storage.deleteAlarm());
    }
  }
}, 30_000);
