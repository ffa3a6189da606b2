/**
 * Summarizes a V8 .cpuprofile (from `npm run bench -- --profile <setup>`, which runs that
 * client with `node --cpu-prof`): self time per package and the hottest functions.
 *
 *   node --import tsx bench/profile.ts bench/results/profiles/meshlet-full.cpuprofile [top]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** Which package a frame belongs to, from its script URL. */
export function category(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'V8/native (program)';
    return 'native';
  }
  const pkg = /\/packages\/(core|http|grpc|discovery|control)\//.exec(url);
  if (pkg !== null) return `@meshlet/${pkg[1]}`;
  // The innermost node_modules names the package (nested copies sit inside their dependant).
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url.slice(url.lastIndexOf('node_modules/')));
  if (nm !== null) return nm[1].startsWith('@opentelemetry/') ? `otel: ${nm[1]}` : nm[1];
  if (url.startsWith('node:')) return 'node core';
  if (url.includes('/bench/')) return 'bench harness';
  return url;
}

export interface ProfileSummary {
  totalMs: number;
  /** Self time per category, ms, busiest first (idle excluded from the shares). */
  byCategory: Array<{ category: string; ms: number; share: number }>;
  /**
   * Self time with node core and native frames charged to the package that called them (e.g. an
   * AbortController made by @meshlet/core counts as @meshlet/core's), busiest first.
   */
  byCaller: Array<{ category: string; ms: number; share: number }>;
  top: ProfileFunction[];
  /** The hottest functions charged to meshlet and what it brings along (opossum, p-retry, the OTel SDK). */
  topMesh: ProfileFunction[];
}

export interface ProfileFunction {
  name: string;
  where: string;
  category: string;
  /** The package charged for it (its own, or its caller's for node core and native code). */
  caller: string;
  ms: number;
  share: number;
}

const MESH = /^(@meshlet\/|otel: |opossum$|p-retry$)/;

export function summarizeProfile(file: string, topN = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  // Self time per node: the time deltas attributed to its samples (more exact than hitCount × interval).
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    // Each delta is the time before sample i; charge it to the sample that follows it.
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + dt);
  }
  const parent = new Map<number, number>();
  const nodesById = new Map<number, ProfileNode>();
  for (const node of profile.nodes) {
    nodesById.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const isInternal = (cat: string): boolean => cat === 'node core' || cat === 'native';
  const callerCategory = (node: ProfileNode): string => {
    let current: ProfileNode | undefined = node;
    while (current !== undefined) {
      const cat = category(current.callFrame.url, current.callFrame.functionName);
      if (!isInternal(cat) || current.callFrame.functionName === '(root)')
        return cat === 'native' ? 'node core / native' : cat;
      const up = parent.get(current.id);
      current = up === undefined ? undefined : nodesById.get(up);
    }
    return 'node core / native';
  };
  const byCaller = new Map<string, number>();
  const byCategory = new Map<string, number>();
  const byFunction = new Map<string, { name: string; where: string; category: string; caller: string; us: number }>();
  let busyUs = 0;
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const cat = category(url, functionName);
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + us);
    if (cat === 'idle') continue;
    const caller = isInternal(cat) ? callerCategory(node) : cat;
    byCaller.set(caller, (byCaller.get(caller) ?? 0) + us);
    busyUs += us;
    const where =
      url === ''
        ? ''
        : `${url.replace(/^file:\/\//, '').replace(/^.*\/(packages|node_modules)\//, '$1/')}:${lineNumber + 1}`;
    const key = `${functionName}@${where}@${caller}`;
    const entry = byFunction.get(key) ?? { name: functionName || '(anonymous)', where, category: cat, caller, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
  }
  const functions: ProfileFunction[] = [...byFunction.values()]
    .sort((a, b) => b.us - a.us)
    .map((f) => ({ ...f, ms: f.us / 1e3, share: f.us / busyUs }));
  return {
    totalMs: busyUs / 1e3,
    byCategory: [...byCategory.entries()]
      .filter(([cat]) => cat !== 'idle')
      .map(([cat, us]) => ({ category: cat, ms: us / 1e3, share: us / busyUs }))
      .sort((a, b) => b.ms - a.ms),
    byCaller: [...byCaller.entries()]
      .map(([cat, us]) => ({ category: cat, ms: us / 1e3, share: us / busyUs }))
      .sort((a, b) => b.ms - a.ms),
    top: functions.slice(0, topN),
    topMesh: functions.filter((f) => MESH.test(f.caller)).slice(0, topN),
  };
}

export function renderProfileSummary(name: string, summary: ProfileSummary): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1).padStart(5)}%`;
  const lines = [`CPU profile of ${name}: ${summary.totalMs.toFixed(0)} ms busy (self time)`, '  by package:'];
  for (const c of summary.byCategory.slice(0, 14)) lines.push(`    ${pct(c.share)}  ${c.category}`);
  lines.push('  by package, node core and native time charged to the calling package:');
  for (const c of summary.byCaller.slice(0, 14)) lines.push(`    ${pct(c.share)}  ${c.category}`);
  const fn = (f: ProfileFunction): string =>
    `    ${pct(f.share)}  ${f.name}  (${f.category}${f.caller === f.category ? '' : ` from ${f.caller}`}) ${f.where}`;
  lines.push('  hottest functions:', ...summary.top.map(fn));
  if (summary.topMesh.length > 0)
    lines.push('  hottest functions charged to meshlet and its dependencies:', ...summary.topMesh.map(fn));
  return lines.join('\n') + '\n';
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error('usage: node --import tsx bench/profile.ts <file.cpuprofile> [top]');
    process.exit(2);
  }
  process.stdout.write(
    renderProfileSummary(path.basename(file), summarizeProfile(file, Number(process.argv[3] ?? 25))),
  );
}
