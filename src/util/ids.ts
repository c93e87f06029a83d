/** Random, URL-safe ids (120 bits), like the reference server's base64id. */
export function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(15));
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_");
}
