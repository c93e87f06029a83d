/**
 * Reading a request body with a cap, chunk by chunk: a body is dropped the moment it passes
 * the cap, so no request is ever buffered unbounded, whatever it declares. The HTTP API and
 * the polling transport both read bodies this way.
 */

/** The whole stream, or undefined (and the stream cancelled) once it passes `max` bytes. */
export async function readAtMost(body: ReadableStream<Uint8Array> | null, max: number): Promise<Uint8Array | undefined> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

