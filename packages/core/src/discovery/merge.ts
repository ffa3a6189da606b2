/**
 * Where the running config comes from: the static `services` of `createMesh` / `update()`,
 * the views of the discovery sources, and DNS. `ConfigMerger` keeps each one, merges them
 * into one `ResolvedMeshConfig` whenever one changes, and hands it to the mesh.
 *
 * Merge rule (documented in docs/architecture.md, "Discovery"):
 * - views are ordered: the static config first, then each source in the order given;
 * - a service's policies (everything but its endpoints) come from the last view whose entry
 *   for it has policy keys (any key other than `endpoints`); static entries always count as
 *   having them. A service only ever given endpoints (e.g. by self-registration) runs on the
 *   defaults;
 * - its endpoints are the union of every view's, by address (the first view's wins);
 * - a service with `dns` takes its endpoints from DNS alone.
 *
 * A source's view is validated one service at a time (`validateServiceConfig`), route
 * targets against every name any view knows, then the merged routes once more, so a name that
 * left one view cannot leave a dangling route behind. Validation is cached per raw entry
 * object: a source that re-sends an unchanged entry object pays nothing for it.
 */
import type { ResolvedEndpoint, ResolvedMeshConfig, ResolvedServiceConfig } from '../config/types.js';
import { validateServiceConfig } from '../config/validate.js';
import { MeshConfigError } from '../errors.js';
import { DnsWatcher, type DnsWatcherOptions } from './dns.js';
import type { DiscoverySnapshot } from './source.js';

interface Entry {
  resolved: ResolvedServiceConfig;
  hasPolicy: boolean;
  /** The raw object it was validated from, and against which known-name generation. */
  raw: unknown;
  generation: number;
}

type View = Map<string, Entry>;

interface DnsState {
  watcher: DnsWatcher;
  target: { name: string };
  key: string;
  endpoints: ResolvedEndpoint[];
  settled: boolean;
}

export interface MergerHooks {
  /** Called with every new merged config. Throws `MeshConfigError` to refuse it. */
  apply(config: ResolvedMeshConfig): void;
  /** A DNS watcher settled (first answer or first failure) or failed later. */
  dnsEvent(service: string, err: Error | undefined): void;
  /** Options for DNS watchers (tests inject a resolver and timers). */
  dnsOptions: Partial<DnsWatcherOptions> | undefined;
}

export class ConfigMerger {
  /** views[0] is the static config; views[i + 1] is source i's. undefined: not delivered yet. */
  private readonly views: Array<View | undefined>;
  private readonly dns = new Map<string, DnsState>();
  /** Bumped whenever the set of known names may have changed (entries re-check their routes). */
  private generation = 0;
  private names = new Set<string>();
  private stopped = false;
  /** Each service's last merged config and what it was made from (see `reuse`). */
  private readonly lastMerged = new Map<
    string,
    { base: ResolvedServiceConfig; eps: readonly ResolvedEndpoint[]; result: ResolvedServiceConfig }
  >();

  constructor(
    staticServices: ReadonlyMap<string, ResolvedServiceConfig>,
    sourceCount: number,
    private readonly hooks: MergerHooks,
  ) {
    this.views = [staticView(staticServices), ...new Array<View | undefined>(sourceCount).fill(undefined)];
    this.recomputeNames();
  }

  /** Builds the first merged config (static services only, plus whatever DNS knows: nothing yet). */
  initial(): ResolvedMeshConfig {
    return this.merge();
  }

  /** Replaces the static view (from `mesh.update()`), already validated. */
  setStatic(services: ReadonlyMap<string, ResolvedServiceConfig>): void {
    this.commit(0, staticView(services));
  }

  /** Replaces source `index`'s view. Throws `MeshConfigError` (nothing changes) when invalid. */
  setSource(index: number, snapshot: DiscoverySnapshot): void {
    const raw = readServices(snapshot);
    const previous = this.views[index + 1];
    // Names known once this view is in place: route targets are checked against them.
    const names = new Set<string>();
    for (let i = 0; i < this.views.length; i++) {
      if (i === index + 1) continue;
      const v = this.views[i];
      if (v) for (const n of v.keys()) names.add(n);
    }
    for (const n of raw.keys()) names.add(n);
    const namesChanged = !sameSet(names, this.names);
    const generation = namesChanged ? this.generation + 1 : this.generation;

    const view: View = new Map();
    const issues: Array<{ path: string; message: string }> = [];
    for (const [name, entry] of raw) {
      const old = previous?.get(name);
      if (old !== undefined && old.raw === entry && old.generation === generation) {
        view.set(name, old);
        continue;
      }
      try {
        const resolved = validateServiceConfig(name, entry, undefined, names);
        view.set(name, { resolved, hasPolicy: hasPolicyKeys(entry), raw: entry, generation });
      } catch (err) {
        if (err instanceof MeshConfigError) issues.push(...err.issues);
        else issues.push({ path: `services.${name}`, message: String(err) });
      }
    }
    if (issues.length > 0) throw new MeshConfigError(issues);
    this.generation = generation;
    this.commit(index + 1, view);
  }

  /** Whether source `index` has delivered a view. */
  hasView(index: number): boolean {
    return this.views[index + 1] !== undefined;
  }

  /** Services whose DNS has not answered or failed yet. */
  pendingDns(): string[] {
    const out: string[] = [];
    for (const [name, s] of this.dns) if (!s.settled) out.push(name);
    return out;
  }

  /** DNS state per service, for status. */
  dnsStatus(): Array<{ service: string; name: string; endpoints: number; error: string | undefined }> {
    const out = [];
    for (const [service, s] of this.dns) {
      out.push({
        service,
        name: s.target.name,
        endpoints: s.endpoints.length,
        error: s.watcher.lastError?.message,
      });
    }
    return out;
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.dns.values()) s.watcher.stop();
    this.dns.clear();
  }

  private commit(slot: number, view: View): void {
    const before = this.views[slot];
    this.views[slot] = view;
    try {
      this.hooks.apply(this.merge());
    } catch (err) {
      this.views[slot] = before;
      throw err;
    }
    this.recomputeNames();
  }

  private recomputeNames(): void {
    const names = new Set<string>();
    for (const v of this.views) if (v) for (const n of v.keys()) names.add(n);
    this.names = names;
  }

  /** Merges every view (and DNS) into one config; throws `MeshConfigError` for dangling routes. */
  private merge(): ResolvedMeshConfig {
    const policy = new Map<string, ResolvedServiceConfig | undefined>();
    const endpoints = new Map<string, ResolvedEndpoint[]>();
    const seen = new Map<string, Set<string>>();
    for (const view of this.views) {
      if (!view) continue;
      for (const [name, e] of view) {
        if (e.hasPolicy || !policy.has(name)) {
          if (e.hasPolicy) policy.set(name, e.resolved);
          else policy.set(name, policy.get(name));
        }
        let list = endpoints.get(name);
        let addrs = seen.get(name);
        if (!list || !addrs) {
          list = [];
          addrs = new Set();
          endpoints.set(name, list);
          seen.set(name, addrs);
        }
        for (const ep of e.resolved.endpoints) {
          if (addrs.has(ep.address)) continue;
          addrs.add(ep.address);
          list.push(ep);
        }
      }
    }
    const services = new Map<string, ResolvedServiceConfig>();
    const dnsWanted = new Set<string>();
    for (const [name, p] of policy) {
      const base = p ?? defaultsFor(name);
      let eps = endpoints.get(name) ?? [];
      if (base.dns !== undefined) {
        dnsWanted.add(name);
        eps = this.dnsEndpoints(name, base);
      }
      services.set(name, this.reuse(name, base, eps));
    }
    for (const name of this.lastMerged.keys()) if (!services.has(name)) this.lastMerged.delete(name);
    for (const [name, s] of this.dns) {
      if (dnsWanted.has(name)) continue;
      s.watcher.stop();
      this.dns.delete(name);
    }
    // Route targets of the merged config: a name that left one view may still be routed to.
    const issues: Array<{ path: string; message: string }> = [];
    for (const [name, cfg] of services) {
      cfg.routes.forEach((route, r) =>
        route.backends.forEach((b, i) => {
          if (!services.has(b.service)) {
            issues.push({
              path: `services.${name}.routes[${r}].backends[${i}].service`,
              message: `routes to "${b.service}", which no config source defines any more: keep an entry for "${b.service}" (an empty one is enough) or remove the route first`,
            });
          }
        }),
      );
    }
    if (issues.length > 0) throw new MeshConfigError(issues);
    return { services };
  }

  /**
   * The merged config of one service: the same object as last time when its policies and every
   * endpoint object are the same, so the mesh can tell an unchanged service by identity and skip
   * it (a push that changes one service of a thousand re-applies one).
   */
  private reuse(name: string, base: ResolvedServiceConfig, eps: ResolvedEndpoint[]): ResolvedServiceConfig {
    const last = this.lastMerged.get(name);
    if (last !== undefined && last.base === base && sameItems(last.eps, eps)) return last.result;
    const result =
      base.endpoints === eps || (base.name === name && sameItems(base.endpoints, eps))
        ? base
        : { ...base, name, endpoints: eps };
    this.lastMerged.set(name, { base, eps, result });
    return result;
  }

  /** The DNS endpoints of `name`, starting (or restarting) its watcher when its target changed. */
  private dnsEndpoints(name: string, cfg: ResolvedServiceConfig): ResolvedEndpoint[] {
    const target = cfg.dns!;
    const key = `${target.type} ${target.name} ${target.port ?? ''} ${target.refreshMs}`;
    const existing = this.dns.get(name);
    if (existing && existing.key === key) return existing.endpoints;
    existing?.watcher.stop();
    if (this.stopped) return [];
    const state: DnsState = {
      key,
      target,
      endpoints: existing?.endpoints ?? [],
      settled: false,
      watcher: undefined as unknown as DnsWatcher,
    };
    state.watcher = new DnsWatcher(name, target, {
      ...this.hooks.dnsOptions,
      onEndpoints: (list) => {
        if (this.dns.get(name) !== state) return;
        state.settled = true;
        try {
          // DNS answers are untrusted input too: the same address rules as the config.
          state.endpoints = validateServiceConfig(name, { endpoints: list.map((e) => ({ ...e })) }).endpoints;
          this.hooks.apply(this.merge());
        } catch (err) {
          this.hooks.dnsEvent(name, err as Error);
          return;
        }
        this.hooks.dnsEvent(name, undefined);
      },
      onError: (err) => {
        if (this.dns.get(name) !== state) return;
        state.settled = true;
        this.hooks.dnsEvent(name, err);
      },
    });
    this.dns.set(name, state);
    state.watcher.start();
    return state.endpoints;
  }
}

function staticView(services: ReadonlyMap<string, ResolvedServiceConfig>): View {
  const view: View = new Map();
  for (const [name, resolved] of services)
    view.set(name, { resolved, hasPolicy: true, raw: undefined, generation: -1 });
  return view;
}

const defaultsCache = new Map<string, ResolvedServiceConfig>();
/** A service nobody gave policies: every default. */
function defaultsFor(name: string): ResolvedServiceConfig {
  let d = defaultsCache.get(name);
  if (d === undefined) {
    d = validateServiceConfig(name, {});
    if (defaultsCache.size > 10_000) defaultsCache.clear();
    defaultsCache.set(name, d);
  }
  return d;
}

/** Reads `snapshot.services` into a Map of raw entries, refusing anything that is not a plain record. */
function readServices(snapshot: unknown): Map<string, unknown> {
  const out = new Map<string, unknown>();
  let services: unknown;
  try {
    services =
      typeof snapshot === 'object' && snapshot !== null ? (snapshot as { services?: unknown }).services : undefined;
    if (typeof services !== 'object' || services === null || Array.isArray(services)) {
      throw new MeshConfigError([
        { path: 'services', message: `expected an object mapping service names to service configs` },
      ]);
    }
    for (const name of Object.keys(services)) {
      const desc = Object.getOwnPropertyDescriptor(services, name);
      if (desc === undefined || !('value' in desc)) {
        throw new MeshConfigError([{ path: `services.${name}`, message: 'expected a plain data property' }]);
      }
      out.set(name, desc.value);
    }
  } catch (err) {
    if (err instanceof MeshConfigError) throw err;
    throw new MeshConfigError([{ path: 'services', message: `could not be read: ${String(err)}` }]);
  }
  return out;
}

function hasPolicyKeys(entry: unknown): boolean {
  if (typeof entry !== 'object' || entry === null) return false;
  for (const k of Object.keys(entry)) if (k !== 'endpoints') return true;
  return false;
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
