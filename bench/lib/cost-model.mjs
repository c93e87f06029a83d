// From measured units to room-hours and dollars (bench/cost.mjs). Pure arithmetic, no I/O.

/** The review scenario, per room-hour: a message every 2 minutes, 5 typing events each, one reconnect per person. */
export const REVIEW = { messages: 30, typing: 150, reconnects: 5 };

/**
 * The reference fleet: 10,000 rooms of 5 people, 8 hours a day (30 days a month), 200 messages
 * and 1,000 typing events per room-day, i.e. 25 messages and 125 typing events per room-hour; one
 * reconnect per person per hour, as in the review scenario; and each room's 5 people arrive and
 * leave once a day (a session per room-day). Outside those 8 hours nobody is connected and a
 * room costs nothing.
 */
export const FLEET = { rooms: 10_000, hoursPerDay: 8, days: 30, messagesPerRoomDay: 200, typingPerRoomDay: 1000, reconnectsPerRoomHour: 5, sessionsPerRoomDay: 1 };
FLEET.roomHoursPerMonth = FLEET.rooms * FLEET.hoursPerDay * FLEET.days;
FLEET.messagesPerRoomHour = FLEET.messagesPerRoomDay / FLEET.hoursPerDay;
FLEET.typingPerRoomHour = FLEET.typingPerRoomDay / FLEET.hoursPerDay;
FLEET.sessionsPerRoomHour = FLEET.sessionsPerRoomDay / FLEET.hoursPerDay;

const UNIT_KEYS = ['doRequests', 'rowsWritten', 'rowsRead', 'awakeMs', 'workerCpuMs', 'workerRequests', 'fetches', 'rpcs', 'wsMessages', 'alarms', 'sqlRowsWritten', 'kvWrites', 'alarmWrites'];

const pick = (o) => Object.fromEntries(UNIT_KEYS.map((k) => [k, o[k] ?? 0]));
const plus = (a, b, f = 1) => Object.fromEntries(UNIT_KEYS.map((k) => [k, a[k] + f * b[k]]));
const times = (a, f) => Object.fromEntries(UNIT_KEYS.map((k) => [k, a[k] * f]));
const floor0 = (a) => Object.fromEntries(UNIT_KEYS.map((k) => [k, Math.max(0, a[k])]));

/** Dollars for a bag of units, by line of the bill. */
export function priceOf(u, prices) {
  const by = {
    doRequests: (u.doRequests * prices.doRequestsPerMillion) / 1e6,
    rowsWritten: (u.rowsWritten * prices.rowsWrittenPerMillion) / 1e6,
    rowsRead: (u.rowsRead * prices.rowsReadPerMillion) / 1e6,
    duration: ((u.awakeMs / 1000) * prices.durationGB * prices.durationPerMillionGBs) / 1e6,
    workerCpu: (u.workerCpuMs * prices.workerCpuPerMillionMs) / 1e6,
    workerRequests: (u.workerRequests * prices.workerRequestsPerMillion) / 1e6,
  };
  return { usd: Object.values(by).reduce((a, b) => a + b, 0), by };
}

/** The shape cost.json's paths hold: units per room-hour and their price. */
function asU(u, prices) {
  const { usd, by } = priceOf(u, prices);
  return {
    doRequests: u.doRequests,
    rowsWritten: u.rowsWritten,
    rowsRead: u.rowsRead,
    awakeSeconds: u.awakeMs / 1000,
    workerCpuMs: u.workerCpuMs,
    usd,
    workerRequests: u.workerRequests,
    usdBy: by,
    detail: { fetches: u.fetches, rpcs: u.rpcs, wsMessages: u.wsMessages, alarms: u.alarms, sqlRowsWritten: u.sqlRowsWritten, kvWrites: u.kvWrites, alarmWrites: u.alarmWrites },
  };
}

/**
 * Units per room-hour for one path at the default heartbeat (`roundsPerHour`): idle is the
 * heartbeat's units per round times the rounds in an hour; review adds the review scenario's
 * events; the fleet's room-hour adds the reference fleet's (25 messages, 125 typing, 5 reconnects).
 */
export function perRoomHour(m, { roundsPerHour, prices }) {
  const ev = (name) => floor0(pick({ ...m.events[name].units, workerRequests: m.events[name].workerRequests, workerCpuMs: m.workerCpu[name].ms }));
  const message = ev('message');
  const cycle = ev('cycle');
  const reconnect = ev('reconnect');
  const session = ev('session');
  const typing = floor0(times(plus(cycle, message, -1), 1 / 5));
  const idle = pick({
    ...times(pick(m.idle.perRound), roundsPerHour),
    workerCpuMs: m.idle.workerCpuMsPerRound * roundsPerHour,
    workerRequests: m.idle.requestsPerRound * roundsPerHour,
  });
  const withEvents = (n) => plus(plus(plus(plus(idle, message, n.messages), typing, n.typing), reconnect, n.reconnects), session, n.sessions ?? 0);
  const review = withEvents(REVIEW);
  const fleetRoomHour = withEvents({ messages: FLEET.messagesPerRoomHour, typing: FLEET.typingPerRoomHour, reconnects: FLEET.reconnectsPerRoomHour, sessions: FLEET.sessionsPerRoomHour });
  return {
    idle: asU(idle, prices),
    review: asU(review, prices),
    perEvent: { message: asU(message, prices), typing: asU(typing, prices), reconnect: asU(reconnect, prices), session: asU(session, prices) },
    fleetRoomHour: asU(fleetRoomHour, prices),
    fleetUsdPerMonth: priceOf(fleetRoomHour, prices).usd * FLEET.roomHoursPerMonth,
  };
}

// ---- the printed report -------------------------------------------------------------------------

const num = (v, w = 9) => {
  let s;
  if (v === 0) s = '0';
  else if (Math.abs(v) >= 1000) s = Math.round(v).toLocaleString('en-US');
  else if (Math.abs(v) >= 10) s = v.toFixed(1);
  else if (Math.abs(v) >= 0.01) s = v.toFixed(3);
  else s = v.toExponential(1);
  return s.padStart(w);
};
const usd = (v, w = 11) => (v >= 1 ? `$${v.toLocaleString('en-US', { maximumFractionDigits: 0 })}` : `$${v.toExponential(2)}`).padStart(w);

export function formatReport(out, measured) {
  const lines = [];
  const head = ['path', 'scenario', 'DO req', 'rows wr', 'rows rd', 'awake s', 'Wkr CPU ms', 'Wkr req', 'USD'];
  const row = (cells) => cells.map((c, i) => (i < 2 ? String(c).padEnd(9) : String(c).padStart(i === 6 ? 11 : 9))).join(' ');
  lines.push(`\nBilled units per room-hour (5 people), at the default heartbeat; prices ${out.prices.asOf} (bench/prices.json)`);
  lines.push(row(head));
  for (const [path, s] of Object.entries(out.paths)) {
    for (const scenario of ['idle', 'review']) {
      const u = s[scenario];
      lines.push(row([path, scenario, num(u.doRequests), num(u.rowsWritten), num(u.rowsRead), num(u.awakeSeconds), num(u.workerCpuMs, 11), num(u.workerRequests), usd(u.usd, 9)]));
    }
  }
  lines.push('\nPer event, above the idle heartbeat (session: a room\'s 5 members connect, join and leave)');
  lines.push(row(['path', 'event', 'DO req', 'rows wr', 'rows rd', 'awake s', 'Wkr CPU ms', 'Wkr req', 'USD']));
  for (const [path, m] of Object.entries(measured)) {
    for (const [name, u] of Object.entries(m.perEventUnits ?? {})) {
      lines.push(row([path, name, num(u.doRequests), num(u.rowsWritten), num(u.rowsRead), num(u.awakeSeconds), num(u.workerCpuMs, 11), num(u.workerRequests), usd(u.usd, 9)]));
    }
  }
  const f = out.details.fleet;
  lines.push(`\nReference fleet: ${f.rooms.toLocaleString('en-US')} rooms x 5 people, ${f.hoursPerDay} h/day x ${f.days} days = ${(f.roomHoursPerMonth / 1e6).toFixed(1)} M room-hours/month,`);
  lines.push(`${f.messagesPerRoomHour} messages, ${f.typingPerRoomHour} typing events, ${f.reconnectsPerRoomHour} reconnects and 1/${f.hoursPerDay} session per room-hour (list prices, no free allowances):`);
  for (const [path, v] of Object.entries(out.fleet)) {
    const by = measured[path].fleetRoomHour.usdBy;
    const parts = Object.entries(by).filter(([, x]) => x > 0).map(([k, x]) => `${k} $${Math.round(x * f.roomHoursPerMonth).toLocaleString('en-US')}`).join(', ');
    lines.push(`  ${path.padEnd(8)} ${usd(v, 9)} / month   (${parts})`);
  }
  return lines.join('\n');
}
