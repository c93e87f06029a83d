// An SVG chart of one run: delivered messages per second and p99 latency, per scenario and server.
// Plain SVG, no dependency; BENCHMARKS.md shows the one from the last full run.
const COLORS = {
  ours: '#0969da',
  'ours-direct': '#1a7f37',
  'ours-norec': '#54aeff',
  'ours-direct-norec': '#4ac26b',
  reference: '#9a6700',
  floor: '#6e7781',
  baseline: '#bf3989',
};

const color = (server) => COLORS[server] ?? '#999';

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

function panel({ x, y, w, h, title, scenarios, servers, value, log, unit }) {
  const vals = scenarios.flatMap((s) => servers.map((n) => value(n, s))).filter((v) => v > 0);
  const max = Math.max(1, ...vals);
  const min = log ? Math.max(0.1, Math.min(...vals, max)) : 0;
  const scale = (v) => (log ? (Math.log10(Math.max(v, min)) - Math.log10(min) + 0.3) / (Math.log10(max) - Math.log10(min) + 0.3) : v / max);
  const groupW = w / scenarios.length;
  const barW = Math.min(22, (groupW - 16) / servers.length);
  let out = `<text x="${x}" y="${y - 8}" font-size="13" font-weight="600">${esc(title)}</text>`;
  out += `<line x1="${x}" y1="${y + h}" x2="${x + w}" y2="${y + h}" stroke="#8c959f"/>`;
  scenarios.forEach((s, i) => {
    const gx = x + i * groupW + (groupW - barW * servers.length) / 2;
    servers.forEach((n, j) => {
      const v = value(n, s);
      if (!(v > 0)) return;
      const bh = Math.max(1, scale(v) * (h - 14));
      const bx = gx + j * barW;
      out += `<rect x="${bx.toFixed(1)}" y="${(y + h - bh).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${bh.toFixed(1)}" fill="${color(n)}"><title>${esc(`${n} ${s}: ${Math.round(v).toLocaleString('en-US')} ${unit}`)}</title></rect>`;
      out += `<text x="${(bx + barW / 2 - 1).toFixed(1)}" y="${(y + h - bh - 3).toFixed(1)}" font-size="7" text-anchor="middle">${esc(v >= 1000 ? `${(v / 1000).toFixed(1)}k` : v >= 10 ? Math.round(v) : v.toFixed(1))}</text>`;
    });
    out += `<text x="${(x + i * groupW + groupW / 2).toFixed(1)}" y="${y + h + 14}" font-size="11" text-anchor="middle">${esc(s)}</text>`;
  });
  if (log) out += `<text x="${x + w}" y="${y - 8}" font-size="10" text-anchor="end" fill="#59636e">log scale</text>`;
  return out;
}

export function renderChart(report) {
  const servers = Object.keys(report.servers).filter((n) => report.servers[n].status === 'ok');
  // Medians over the run's rounds (a single run's figure in results written before rounds existed).
  const entry = (n, s) => report.servers[n].scenarios?.[s];
  const delivered = (n, s) => entry(n, s)?.summary?.deliveredPerSec?.median ?? entry(n, s)?.result?.deliveredPerSec;
  const p99 = (n, s) => entry(n, s)?.summary?.latencyP99Ms?.median ?? entry(n, s)?.result?.latencyMs?.p99;
  const scenarios = report.scenarios.filter((s) => servers.some((n) => delivered(n, s)));
  const W = 860, H = 330;
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui,sans-serif" fill="#1f2328">`;
  svg += `<rect width="${W}" height="${H}" fill="#fff"/>`;
  svg += `<text x="20" y="22" font-size="14" font-weight="700">PR-room bench, ${esc(report.mode)} run${report.rounds > 1 ? ` (medians of ${report.rounds} rounds)` : ''} of ${esc(report.startedAt.slice(0, 10))} (${esc(report.observability.split(' ')[0])} observability, ${esc(report.pinning.split(':')[0])})</text>`;
  svg += panel({ x: 30, y: 70, w: 380, h: 190, title: 'Delivered msgs/s (higher is better)', scenarios, servers, value: delivered, log: true, unit: 'msgs/s' });
  svg += panel({ x: 460, y: 70, w: 380, h: 190, title: 'p99 latency in ms (lower is better)', scenarios, servers, value: p99, log: true, unit: 'ms' });
  servers.forEach((n, i) => {
    const lx = 30 + (i % 4) * 205, ly = 300 + Math.floor(i / 4) * 16;
    svg += `<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${color(n)}"/><text x="${lx + 14}" y="${ly}" font-size="11">${esc(n)}</text>`;
  });
  return `${svg}</svg>\n`;
}
