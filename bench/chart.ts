/**
 * bench/chart.svg, drawn by hand (no charting dependency): per setup, p50 and p99 latency at
 * 50% load on the left (log scale), throughput at concurrency 64 on the right.
 */
import type { PointResult } from './lib/types.ts';
import { throughputRatio, type BenchReport } from './report.ts';
import { BASELINE as BASELINE_NAME } from './setups.ts';

const ROW = 30;
const LABEL_W = 300;
const PANEL_W = 300;
const GAP = 120;
const TOP = 92;
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

/** "250 µs", "2.5 ms", "1 s". */
function duration(us: number): string {
  if (us >= 1e6) return `${+(us / 1e6).toPrecision(3)} s`;
  if (us >= 1e3) return `${+(us / 1e3).toPrecision(3)} ms`;
  return `${+us.toPrecision(3)} µs`;
}

export function renderChart(report: BenchReport): string {
  const setups = report.setups.filter((s) => s.skipped === undefined && report.results[s.name] !== undefined);
  const lat = (name: string): PointResult | undefined => report.results[name]?.open50;
  const tput = (name: string): PointResult | undefined => report.results[name]?.c64;
  // Latency on a log scale: a saturated setup's seconds and an idle one's microseconds both stay readable.
  const latencies = setups.flatMap((s) => {
    const l = lat(s.name)?.latencyUs;
    return l === undefined ? [] : [l.p50, l.p99];
  });
  const minDecade = Math.floor(Math.log10(Math.max(1, Math.min(...latencies, 1e9))));
  const maxDecade = Math.max(minDecade + 1, Math.ceil(Math.log10(Math.max(10, ...latencies))));
  const latX = (us: number): number =>
    (PANEL_W * (Math.log10(Math.max(us, 10 ** minDecade)) - minDecade)) / (maxDecade - minDecade);
  const maxTput = niceMax(Math.max(...setups.map((s) => tput(s.name)?.throughput ?? 0)));
  const height = TOP + setups.length * ROW + 50;
  const x1 = LABEL_W;
  const x2 = LABEL_W + PANEL_W + GAP;
  const rates = report.rates === undefined ? '' : ` (${fmt(report.rates[BASELINE_NAME]?.open50 ?? 0)} req/s)`;

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="16" y="24" font-size="15" font-weight="600">meshlet vs raw undici vs HAProxy sidecars — ${esc(`${report.environment.cores} cores, Node ${report.environment.node}`)}</text>`,
    `<text x="${x1}" y="52" font-weight="600">Latency at 50% load${esc(rates)}, log scale</text>`,
    `<text x="${x1}" y="66" fill="#6b7280">light: p50, dark: p99, from the intended send time</text>`,
    `<text x="${x1}" y="80" fill="#6b7280">(the fetch rows at 50% of undici fetch's maximum)</text>`,
    `<text x="${x2}" y="52" font-weight="600">Throughput at concurrency 64, req/s</text>`,
    `<text x="${x2}" y="66" fill="#6b7280">label: ratio to the setup's baseline (median of paired rounds)</text>`,
  ];

  const gridBottom = TOP + setups.length * ROW;
  for (let d = minDecade; d <= maxDecade; d++) {
    const x = x1 + latX(10 ** d);
    out.push(`<line x1="${x.toFixed(1)}" y1="${TOP - 4}" x2="${x.toFixed(1)}" y2="${gridBottom}" stroke="#e5e7eb"/>`);
    out.push(
      `<text x="${x.toFixed(1)}" y="${gridBottom + 16}" text-anchor="middle" fill="#6b7280">${duration(10 ** d)}</text>`,
    );
  }
  for (let i = 0; i <= 4; i++) {
    const x = x2 + (PANEL_W * i) / 4;
    out.push(`<line x1="${x}" y1="${TOP - 4}" x2="${x}" y2="${gridBottom}" stroke="#e5e7eb"/>`);
    out.push(
      `<text x="${x}" y="${gridBottom + 16}" text-anchor="middle" fill="#6b7280">${fmt((maxTput * i) / 4)}</text>`,
    );
  }

  setups.forEach((s, row) => {
    const y = TOP + row * ROW;
    out.push(`<text x="${LABEL_W - 10}" y="${y + ROW / 2 + 4}" text-anchor="end">${esc(s.label)}</text>`);
    const l = lat(s.name);
    if (l !== undefined) {
      const w50 = latX(l.latencyUs.p50);
      const w99 = latX(l.latencyUs.p99);
      out.push(
        `<rect x="${x1}" y="${y + 5}" width="${w99.toFixed(1)}" height="${ROW - 10}" fill="${colour(s.name, true)}"/>`,
      );
      out.push(
        `<rect x="${x1}" y="${y + 5}" width="${w50.toFixed(1)}" height="${ROW - 10}" fill="${colour(s.name, false)}"/>`,
      );
      out.push(
        `<text x="${(x1 + w99 + 4).toFixed(1)}" y="${y + ROW / 2 + 4}" fill="#111827">${duration(l.latencyUs.p50)} / ${duration(l.latencyUs.p99)}</text>`,
      );
    }
    const t = tput(s.name);
    if (t !== undefined) {
      const w = (PANEL_W * t.throughput) / maxTput;
      const r = s.baseline === undefined ? undefined : throughputRatio(report, s.name, s.baseline, 'c64');
      const ratio = r === undefined ? 'baseline' : `${r.toFixed(2)}×`;
      out.push(
        `<rect x="${x2}" y="${y + 5}" width="${w.toFixed(1)}" height="${ROW - 10}" fill="${colour(s.name, true)}"/>`,
      );
      out.push(
        `<text x="${(x2 + w + 4).toFixed(1)}" y="${y + ROW / 2 + 4}" fill="#111827">${fmt(t.throughput)} (${ratio})</text>`,
      );
    }
  });
  out.push(
    `<text x="16" y="${height - 10}" fill="#6b7280">${esc(`${report.environment.cpuModel}; run ${report.startedAt}; medians over ${report.options.rounds} round(s); npm run bench`)}</text>`,
    '</svg>',
    '',
  );
  return out.join('\n');
}
