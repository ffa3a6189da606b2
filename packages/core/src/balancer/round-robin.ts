/**
 * Weighted round robin, interleaved (earliest-deadline-first, as Envoy): endpoint i with weight
 * w_i is due w_i times per cycle at even spacing, so heavy endpoints are spread through the cycle,
 * and every cycle of sum(w) picks holds exactly w_i picks of endpoint i (weights reduced by their
 * gcd first). Three modes, cheapest first:
 * - equal weights: a cursor over the endpoints, O(1);
 * - sum(w) <= SCHEDULE_LIMIT: the EDF cycle precomputed into a bounded array, O(1) per pick;
 * - larger: live EDF over a binary heap, O(log n) per pick, O(n) memory.
 * Each picker starts at a random point of its cycle (as grpc-js does) so processes don't herd.
 *
 * Ordering: a Picker snapshot over already-filtered (pickable) endpoints. The cursor is the only
 * mutable state; a rebuilt picker starts a new cycle.
 */
import type { Endpoint } from '../endpoint.js';
import { endpointWeight } from './random.js';
import type { BalancerOptions, PickContext, Picker, PickerFactory } from './types.js';

/** Largest cycle precomputed into a schedule (16 KiB of indices); beyond it, live EDF. */
const SCHEDULE_LIMIT = 4096;

const EMPTY: Picker = { pick: () => undefined };

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/**
 * Earliest-deadline-first over integer weights. The k-th pick of endpoint i in a cycle is due at
 * (k + offset_i) / w_i, offset_i in (0, 1) spread over the endpoints: with equal offsets, all the
 * light endpoints would tie at the cycle's end and run back to back while a heavy one bunched up
 * around the wrap. Deadlines are recomputed (epoch + fraction), never accumulated, so they cannot
 * drift; ties go to the lower index.
 */
class EdfScheduler {
  private readonly weights: Float64Array;
  private readonly offsets: Float64Array;
  private readonly counts: Float64Array;
  private readonly epochs: Float64Array;
  private readonly deadlines: Float64Array;
  /** Binary min-heap of endpoint indices keyed by deadline. */
  private readonly heap: Int32Array;

  /** Starts at virtual time `phase` in [0, 1) of the first cycle. */
  constructor(weights: Float64Array, phase: number) {
    const n = weights.length;
    this.weights = weights;
    this.offsets = new Float64Array(n);
    this.counts = new Float64Array(n);
    this.epochs = new Float64Array(n);
    this.deadlines = new Float64Array(n);
    this.heap = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const w = weights[i];
      const offset = (i + 0.5) / n;
      this.offsets[i] = offset;
      // Picks endpoint i would have had before `phase` (deadlines <= phase), so cycles stay exact.
      let count = Math.max(0, Math.floor(phase * w - offset) + 1);
      if (count >= w) {
        count -= w;
        this.epochs[i] = 1;
      }
      this.counts[i] = count;
      this.deadlines[i] = this.epochs[i] + (count + offset) / w;
      this.heap[i] = i;
    }
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  next(): number {
    const heap = this.heap;
    const i = heap[0];
    let count = this.counts[i] + 1;
    if (count === this.weights[i]) {
      count = 0;
      this.epochs[i]++;
    }
    this.counts[i] = count;
    this.deadlines[i] = this.epochs[i] + (count + this.offsets[i]) / this.weights[i];
    this.siftDown(0);
    return i;
  }

  private less(a: number, b: number): boolean {
    const da = this.deadlines[a];
    const db = this.deadlines[b];
    return da < db || (da === db && a < b);
  }

  private siftDown(pos: number): void {
    const heap = this.heap;
    const n = heap.length;
    const item = heap[pos];
    for (;;) {
      let child = 2 * pos + 1;
      if (child >= n) break;
      if (child + 1 < n && this.less(heap[child + 1], heap[child])) child++;
      if (!this.less(heap[child], item)) break;
      heap[pos] = heap[child];
      pos = child;
    }
    heap[pos] = item;
  }
}

class CursorPicker implements Picker {
  private cursor: number;
  constructor(
    private readonly endpoints: readonly Endpoint[],
    start: number,
  ) {
    this.cursor = start;
  }

  pick(ctx: PickContext): Endpoint | undefined {
    const endpoints = this.endpoints;
    const n = endpoints.length;
    let i = this.cursor;
    this.cursor = i + 1 === n ? 0 : i + 1;
    if (endpoints[i] === ctx.avoid && n > 1) {
      i = this.cursor;
      this.cursor = i + 1 === n ? 0 : i + 1;
    }
    return endpoints[i];
  }
}

class SchedulePicker implements Picker {
  private cursor: number;
  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly schedule: Int32Array,
    start: number,
  ) {
    this.cursor = start;
  }

  private advance(): number {
    const c = this.cursor;
    this.cursor = c + 1 === this.schedule.length ? 0 : c + 1;
    return this.schedule[c];
  }

  pick(ctx: PickContext): Endpoint | undefined {
    const endpoints = this.endpoints;
    let i = this.advance();
    if (endpoints[i] === ctx.avoid) {
      // Next in the cycle; a heavy endpoint may be due twice in a row, then take its neighbour.
      i = this.advance();
      if (endpoints[i] === ctx.avoid) i = i + 1 === endpoints.length ? 0 : i + 1;
    }
    return endpoints[i];
  }
}

class EdfPicker implements Picker {
  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly edf: EdfScheduler,
  ) {}

  pick(ctx: PickContext): Endpoint | undefined {
    const endpoints = this.endpoints;
    let i = this.edf.next();
    if (endpoints[i] === ctx.avoid) {
      i = this.edf.next();
      if (endpoints[i] === ctx.avoid) i = i + 1 === endpoints.length ? 0 : i + 1;
    }
    return endpoints[i];
  }
}

/** Builds a weighted round-robin picker over a copy of `endpoints`, starting at a random offset. */
export function createRoundRobinPicker(endpoints: readonly Endpoint[], options: BalancerOptions): Picker {
  const n = endpoints.length;
  if (n === 0) return EMPTY;
  const snapshot = endpoints.slice();
  const random = options.random;

  const weights = new Float64Array(n);
  let g = 0;
  for (let i = 0; i < n; i++) {
    weights[i] = endpointWeight(snapshot[i]);
    g = gcd(weights[i], g);
  }
  let total = 0;
  for (let i = 0; i < n; i++) {
    weights[i] /= g;
    total += weights[i];
  }

  if (total === n) return new CursorPicker(snapshot, Math.min(n - 1, Math.floor(random() * n)));

  if (total <= SCHEDULE_LIMIT) {
    const edf = new EdfScheduler(weights, 0);
    const schedule = new Int32Array(total);
    for (let c = 0; c < total; c++) schedule[c] = edf.next();
    return new SchedulePicker(snapshot, schedule, Math.min(total - 1, Math.floor(random() * total)));
  }

  return new EdfPicker(snapshot, new EdfScheduler(weights, random()));
}

/** `round-robin`: interleaved weighted round robin. */
export const roundRobinPickerFactory: PickerFactory = createRoundRobinPicker;
