/**
 * A zod schema that is built on its first use, not at module scope: building zod schemas
 * is a large part of what an isolate does before it can answer (scripts/cold-start.mjs),
 * and most are not needed before a client's first frame, or at all in that isolate. It
 * parses, and fails, exactly as the schema it wraps; `.unwrap()` gives that schema (always
 * the same one), to extend or annotate it.
 */
import { z } from "zod";
import { once } from "./once.js";

export function lazySchema<T extends z.ZodType>(build: () => T): z.ZodLazy<T> {
  return z.lazy(once(build));
}
