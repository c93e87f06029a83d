// The order servers run in, per round: rotated so that no server always goes first or last
// (after a scenario change, or as the machine drifts), spread evenly over the rounds: with six
// servers and three rounds, each starts two places further on.
export function roundOrder(names, round, rounds) {
  if (names.length === 0) return [];
  const offset = Math.floor((round * names.length) / rounds) % names.length;
  return [...names.slice(offset), ...names.slice(0, offset)];
}
