/**
 * Reading finished frames without parsing their JSON: the gateway forwards a room's frames
 * as they came, and only needs to know what each one is. Pure. For the main namespace ("/"),
 * whose packets carry no namespace before their data.
 */

/** An Engine.IO message (`4`) holding a Socket.IO ACK (`3`): `43<id>[...]`. */
export function isAckFrame(frame: string): boolean {
  return frame.charCodeAt(0) === 52 && frame.charCodeAt(1) === 51;
}

/** The ack id of an ACK frame (the digits after `43`). */
export function ackIdOf(frame: string): number {
  let id = 0;
  for (let i = 2; i < frame.length; i++) {
    const digit = frame.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) break;
    id = id * 10 + digit;
  }
  return id;
}

/** How an Engine.IO message holding a Socket.IO EVENT named `event` starts: `42["<event>",`. */
export function eventFramePrefix(event: string): string {
  return `42[${JSON.stringify(event)},`;
}
