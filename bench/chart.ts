/**
 * bench/chart.svg, drawn by hand (no charting dependency): per setup, p50 and p99 latency at
 * 50% load on the left, throughput at concurrency 64 on the right.
 */
import type { PointResult } from './lib/types.ts';
import type { BenchReport } from './report.ts';

const ROW = 30;
const LABEL_W = 300;
const PANEL_W = 300;
const GAP = 120;
const TOP = 78;
const WIDTH = LABEL_W + PANEL_W * 2 + GAP + 170;

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function colour(name: string, strong: boolean): string {
  if (name.startsWith('haproxy')) return strong ? '#c2410c' : '#fdba74';
  if (name.startsWith('meshlet')) return strong ? '#1d4ed8' : '#93c5fd';
  return strong ? '#374151' : '#9ca3af';
}

/** A round upper bound for an axis: 1, 2 or 5 × 10^n. */
function niceMax(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * magnitude) return step * magnitude;
  return 10 * magnitude;
}

function fmt(n: number): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: 0 });
}

export function renderChart(report: BenchReport): string {
  const setups = report.setups.filter((s) => s.skipped === undefined && report.results[s.name] !== undefined);
  const lat = (name: string): PointResult | undefined => report.results[name]?.open50;
  const tput = (name: string): PointResult | undefined => report.results[name]?.c64;
  const maxLat = niceMax(Math.max(...setups.map((s) => lat(s.name)?.latencyUs.p99 ?? 0)));
  const maxTput = niceMax(Math.max(...setups.map((s) => tput(s.name)?.throughput ?? 0)));
  const height = TOP + setups.length * ROW + 50;
  const x1 = LABEL_W;
  const x2 = LABEL_W + PANEL_W + GAP;
  const rate = report.rates === undefined ? '' : ` (${fmt(report.rates.open50)} req/s)`;

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="16" y="24" font-size="15" font-weight="600">meshlet vs raw undici vs HAProxy sidecars — ${esc(report.environment.cores + ' cores, Node ' + report.environment.node)}</text>`,
    `<text x="${x1}" y="52" font-weight="600">Latency at 50% load${esc(rate)}, µs</text>`,
    `<text x="${x1}" y="66" fill="#6b7280">light: p50, dark: p99 (from intended send time)</text>`,
    `<text x="${x2}" y="52" font-weight="600">Throughput at concurrency 64, req/s</text>`,
    `<text x="${x2}" y="66" fill="#6b7280">label: ratio to the setup's baseline</text>`,
  ];

  // Grid lines and axis labels.
  for (const [x0, max] of [
    [x1, maxLat],
    [x2, maxTput],
  ] as const) {
    for (let i = 0; i <= 4; i++) {
      const x = x0 + (PANEL_W * i) / 4;
      out.push(`<line x1="${x}" y1="${TOP - 4}" x2="${x}" y2="${TOP + setups.length * ROW}" stroke="#e5e7eb"/>`);
      out.push(`<text x="${x}" y="${TOP + setups.length * ROW + 16}" text-anchor="middle" fill="#6b7280">${fmt((max * i) / 4)}</text>`);
    }
  }

  setups.forEach((s, row) => {
    const y = TOP + row * ROW;
    out.push(`<text x="${LABEL_W - 10}" y="${y + ROW / 2 + 4}" text-anchor="end">${esc(s.label)}</text>`);
    const l = lat(s.name);
    if (l !== undefined) {
      const w50 = (PANEL_W * l.latencyUs.p50) / maxLat;
      const w99 = (PANEL_W * l.latencyUs.p99) / maxLat;
      out.push(`<rect x="${x1}" y="${y + 5}" width="${w99.toFixed(1)}" height="${ROW - 10}" fill="${colour(s.name, true)}"/>`);
      out.push(`<rect x="${x1}" y="${y + 5}" width="${w50.toFixed(1)}" height="${ROW - 10}" fill="${colour(s.name, false)}"/>`);
      out.push(`<text x="${x1 + w99 + 4}" y="${y + ROW / 2 + 4}" fill="#111827">${fmt(l.latencyUs.p50)} / ${fmt(l.latencyUs.p99)}</text>`);
    }
    const t = tput(s.name);
    if (t !== undefined) {
      const w = (PANEL_W * t.throughput) / maxTput;
      const base = s.baseline === undefined ? undefined : tput(s.baseline);
      const ratio = base === undefined ? 'baseline' : `${(t.throughput / base.throughput).toFixed(2)}×`;
      out.push(`<rect x="${x2}" y="${y + 5}" width="${w.toFixed(1)}" height="${ROW - 10}" fill="${colour(s.name, true)}"/>`);
      out.push(`<text x="${x2 + w + 4}" y="${y + ROW / 2 + 4}" fill="#111827">${fmt(t.throughput)} (${ratio})</text>`);
    }
  });
  out.push(
    `<text x="16" y="${height - 10}" fill="#6b7280">${esc(`${report.environment.cpuModel}; run ${report.startedAt}; npm run bench`)}</text>`,
    '</svg>',
    '',
  );
  return out.join('\n');
}
