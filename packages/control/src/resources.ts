/**
 * Turns the control server's inputs (the config file, DNS answers, live registrations) into the
 * resources it serves: one Service resource per configured service (its config without
 * `endpoints` and without `dns`) and one EndpointSet per service that has a config entry or a
 * registration (static endpoints ∪ DNS results ∪ registrations, deduplicated by address, the
 * first source in that order winning).
 *
 * `dns` is left out of the Service resource on purpose: the server resolves it (see
 * `dns-resolver.ts`) and pushes the answers as endpoints, so a thousand clients do not each run
 * their own resolution of the same name, and every client sees the same set.
 */
import type { StoredRegistration } from './store.js';

/** An endpoint as it goes on the wire. */
export interface WireEndpoint {
  address: string;
  weight: number;
  zone: string;
  metadata: Record<string, string>;
}

export interface ResourceSet {
  /** name → config without endpoints and dns (a JSON object). */
  services: Map<string, Record<string, unknown>>;
  /** name → endpoints (sorted by address). */
  endpointSets: Map<string, WireEndpoint[]>;
}

/** DNS answers for one service. */
export type DnsEndpoints = ReadonlyArray<{ address: string; weight: number }>;

/** Parsed, sorted static endpoints per config `endpoints` array (stable until a reload replaces it). */
const staticCache = new WeakMap<object, WireEndpoint[]>();

function staticEndpoints(list: unknown): WireEndpoint[] {
  if (!Array.isArray(list)) return [];
  let out = staticCache.get(list);
  if (out === undefined) {
    const byAddress = new Map<string, WireEndpoint>();
    for (const e of list) {
      const ep = staticEndpoint(e);
      if (ep !== undefined && !byAddress.has(ep.address)) byAddress.set(ep.address, ep);
    }
    out = sortByAddress([...byAddress.values()]);
    staticCache.set(list, out);
  }
  return out;
}

function sortByAddress(list: WireEndpoint[]): WireEndpoint[] {
  return list.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}

export function buildResources(
  services: Record<string, Record<string, unknown>>,
  dns: ReadonlyMap<string, DnsEndpoints>,
  registrations: Iterable<StoredRegistration>,
): ResourceSet {
  const outServices = new Map<string, Record<string, unknown>>();
  const statics = new Map<string, WireEndpoint[]>();
  /** Services whose set is more than their static endpoints: address → endpoint. */
  const merged = new Map<string, Map<string, WireEndpoint>>();
  const mergedOf = (name: string): Map<string, WireEndpoint> => {
    let m = merged.get(name);
    if (m === undefined) {
      merged.set(name, (m = new Map()));
      for (const e of statics.get(name) ?? []) m.set(e.address, e);
    }
    return m;
  };

  for (const name of Object.keys(services)) {
    const { endpoints, dns: dnsConfig, ...rest } = services[name] ?? {};
    outServices.set(name, rest);
    statics.set(name, staticEndpoints(endpoints));
    if (dnsConfig !== undefined) {
      const set = mergedOf(name);
      for (const e of dns.get(name) ?? []) {
        if (!set.has(e.address)) set.set(e.address, { address: e.address, weight: e.weight, zone: '', metadata: {} });
      }
    }
  }
  for (const r of registrations) {
    const set = mergedOf(r.service);
    if (!set.has(r.address)) {
      set.set(r.address, { address: r.address, weight: r.weight, zone: r.zone ?? '', metadata: { ...r.metadata } });
    }
  }

  const endpointSets = new Map<string, WireEndpoint[]>();
  const names = new Set([...statics.keys(), ...merged.keys()]);
  for (const name of [...names].sort()) {
    const m = merged.get(name);
    // A service with only static endpoints shares the cached array: no copy, and the snapshot
    // sees the same array and skips its comparison.
    endpointSets.set(name, m === undefined ? statics.get(name)! : sortByAddress([...m.values()]));
  }
  const sortedServices = new Map([...outServices.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
  return { services: sortedServices, endpointSets };
}

function staticEndpoint(e: unknown): WireEndpoint | undefined {
  if (typeof e === 'string') return { address: e, weight: 1, zone: '', metadata: {} };
  if (e === null || typeof e !== 'object') return undefined;
  const o = e as { address?: unknown; weight?: unknown; zone?: unknown; metadata?: unknown };
  if (typeof o.address !== 'string') return undefined;
  const metadata: Record<string, string> = {};
  if (o.metadata !== null && typeof o.metadata === 'object') {
    for (const [k, v] of Object.entries(o.metadata)) if (typeof v === 'string') metadata[k] = v;
  }
  return {
    address: o.address,
    weight: typeof o.weight === 'number' ? o.weight : 1,
    zone: typeof o.zone === 'string' ? o.zone : '',
    metadata,
  };
}
