/**
 * A value built on first use and kept: for what is costly to build (zod schemas, a Hono app)
 * and would otherwise be built at module scope, on every isolate's start-up path.
 */
export function once<T>(build: () => T): () => T {
  let built: { value: T } | undefined;
  return () => (built ??= { value: build() }).value;
}
