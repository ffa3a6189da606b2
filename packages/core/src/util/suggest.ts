/** Did-you-mean suggestions for config keys, enum values and service names. */

/** ` (did you mean "retry"?)` when a candidate is close enough by edit distance, else ``. */
export function didYouMean(input: string, candidates: readonly string[]): string {
  if (input.length > 64) return ''; // keeps the quadratic distance bounded
  const lower = input.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const threshold = Math.max(1, Math.min(3, Math.floor(input.length / 3)));
  return best !== undefined && bestDistance <= threshold ? ` (did you mean "${best}"?)` : '';
}

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions ("retyr" → "retry" is 1). */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}

/** Candidates within a small edit distance of `input`, closest first (at most `max`). */
export function closeMatches(input: string, candidates: Iterable<string>, max = 3): string[] {
  if (input.length > 64) return [];
  const lower = input.toLowerCase();
  const threshold = Math.max(1, Math.min(3, Math.floor(input.length / 3)));
  const found: Array<[number, string]> = [];
  for (const candidate of candidates) {
    if (candidate.length > 64) continue;
    const d = editDistance(lower, candidate.toLowerCase());
    if (d <= threshold) found.push([d, candidate]);
  }
  found.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1));
  return found.slice(0, max).map((f) => f[1]);
}
