/**
 * Consistent hashing ring (Envoy `ring_hash`, ketama style): each endpoint owns virtual nodes in
 * proportion to its weight, placed at murmur3(address, node number); a request goes to the first
 * node clockwise from `ctx.hash` (binary search, O(log ring)). Removing one of n endpoints remaps
 * only the keys it owned (~1/n).
 *
 * Ring size: at least MIN_RING_SIZE nodes and at least MIN_NODES_PER_ENDPOINT for the lightest
 * endpoint, at most MAX_RING_SIZE. Large services (thousands of endpoints) are held to
 * LARGE_RING_SIZE nodes, down to FLOOR_NODES_PER_ENDPOINT per unit of the lightest weight, so a
 * rebuild after an ejection or an update stays in the tens of milliseconds (10,000 endpoints:
 * 32 nodes each, about ±18% spread of shares instead of ±10% at 100 nodes). Nodes per unit of weight are rounded up to a power of two so
 * that adding or removing an endpoint usually leaves every other endpoint's nodes unchanged (with
 * Envoy's exact scaling, each change would also move a few percent of everyone's keys).
 *
 * Ordering: a Picker snapshot over already-filtered (pickable) endpoints, built once per
 * endpoint-set change; the caller hashes the request key into `ctx.hash` (see `hashString`).
 * Without a hash, a random node is taken, so traffic still follows weights.
 */
import type { Endpoint } from '../endpoint.js';
import { hashString, hashUint32 } from './hash.js';
import { endpointWeight } from './random.js';
import type { BalancerOptions, PickContext, Picker, PickerFactory } from './types.js';

const MIN_RING_SIZE = 1024;
const MIN_NODES_PER_ENDPOINT = 100;
const MAX_RING_SIZE = 8_388_608;
const LARGE_RING_SIZE = 524_288;
const FLOOR_NODES_PER_ENDPOINT = 32;

const EMPTY: Picker = { pick: () => undefined };

class RingHashPicker implements Picker {
  constructor(
    private readonly endpoints: readonly Endpoint[],
    /** Sorted node hashes. */
    private readonly hashes: Uint32Array,
    /** Endpoint index of each node. */
    private readonly owners: Int32Array,
    /** Next node clockwise owned by a different endpoint (for `avoid`), -1 if none. */
    private readonly nextDistinct: Int32Array,
    private readonly random: () => number,
  ) {}

  pick(ctx: PickContext): Endpoint | undefined {
    const endpoints = this.endpoints;
    if (endpoints.length === 1) return endpoints[0];
    const hashes = this.hashes;
    const size = hashes.length;
    let pos: number;
    if (ctx.hash === undefined) {
      pos = Math.floor(this.random() * size);
      if (pos >= size) pos = size - 1;
    } else {
      // First node with hash >= key, wrapping past the top of the ring to node 0.
      const key = ctx.hash >>> 0;
      let lo = 0;
      let hi = size;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (hashes[mid] < key) lo = mid + 1;
        else hi = mid;
      }
      pos = lo === size ? 0 : lo;
    }
    const chosen = endpoints[this.owners[pos]];
    if (chosen === ctx.avoid && this.nextDistinct[pos] >= 0) return endpoints[this.owners[this.nextDistinct[pos]]];
    return chosen;
  }
}

/** Virtual nodes per unit of weight for these weights (see the file comment). */
function nodesPerWeight(minWeight: number, totalWeight: number): number {
  const wanted = Math.max(MIN_NODES_PER_ENDPOINT / minWeight, MIN_RING_SIZE / totalWeight);
  let rounded = 2 ** Math.ceil(Math.log2(wanted));
  while (rounded * totalWeight > LARGE_RING_SIZE && (rounded / 2) * minWeight >= FLOOR_NODES_PER_ENDPOINT) rounded /= 2;
  return rounded * totalWeight > MAX_RING_SIZE ? MAX_RING_SIZE / totalWeight : rounded;
}

/**
 * Sorts nodes by hash, carrying owners along: LSD radix sort, two 16-bit passes. Linear and several
 * times faster than sorting, which matters for the multi-million-node rings that skewed weights
 * need; stable, so the rare equal hashes stay in endpoint order.
 */
function sortByHash(hashes: Uint32Array, owners: Int32Array): void {
  const size = hashes.length;
  const tmpHashes = new Uint32Array(size);
  const tmpOwners = new Int32Array(size);
  const offsets = new Int32Array(65_536);
  for (let shift = 0; shift <= 16; shift += 16) {
    const [fromH, fromO, toH, toO] =
      shift === 0 ? [hashes, owners, tmpHashes, tmpOwners] : [tmpHashes, tmpOwners, hashes, owners];
    offsets.fill(0);
    for (let q = 0; q < size; q++) offsets[(fromH[q] >>> shift) & 0xffff]++;
    let sum = 0;
    for (let d = 0; d < 65_536; d++) {
      const c = offsets[d];
      offsets[d] = sum;
      sum += c;
    }
    for (let q = 0; q < size; q++) {
      const at = offsets[(fromH[q] >>> shift) & 0xffff]++;
      toH[at] = fromH[q];
      toO[at] = fromO[q];
    }
  }
}

/** Builds a consistent-hashing ring picker over a copy of `endpoints`. */
export function createRingHashPicker(endpoints: readonly Endpoint[], options: BalancerOptions): Picker {
  const n = endpoints.length;
  if (n === 0) return EMPTY;
  const snapshot = endpoints.slice();

  const weights = new Float64Array(n);
  let minWeight = Infinity;
  let totalWeight = 0;
  for (let i = 0; i < n; i++) {
    weights[i] = endpointWeight(snapshot[i]);
    minWeight = Math.min(minWeight, weights[i]);
    totalWeight += weights[i];
  }
  const perWeight = nodesPerWeight(minWeight, totalWeight);
  const counts = new Int32Array(n);
  let size = 0;
  for (let i = 0; i < n; i++) {
    counts[i] = Math.max(1, Math.round(perWeight * weights[i]));
    size += counts[i];
  }

  const hashes = new Uint32Array(size);
  const owners = new Int32Array(size);
  let p = 0;
  for (let i = 0; i < n; i++) {
    const seed = hashString(snapshot[i].address);
    for (let j = 0; j < counts[i]; j++, p++) {
      hashes[p] = hashUint32(j, seed);
      owners[p] = i;
    }
  }
  sortByHash(hashes, owners);

  // Backward pass; the last node's successor wraps to node 0, so a second short pass fixes up
  // the tail that ran into node 0 before node 0 was known.
  const nextDistinct = new Int32Array(size).fill(-1);
  for (let pass = 0; pass < 2; pass++) {
    for (let q = size - 1; q >= 0; q--) {
      const next = q + 1 === size ? 0 : q + 1;
      const found = owners[next] !== owners[q] ? next : nextDistinct[next];
      if (pass === 1 && nextDistinct[q] === found) break;
      nextDistinct[q] = found;
    }
  }

  return new RingHashPicker(snapshot, hashes, owners, nextDistinct, options.random);
}

/** `ring-hash`: consistent hashing on `PickContext.hash`. */
export const ringHashPickerFactory: PickerFactory = createRingHashPicker;
