/**
 * Per-resource bookkeeping of the control-plane client, free of I/O so it is unit-testable:
 * evaluating one state-of-the-world or incremental response against the last good resources
 * (xDS A46/A88 semantics), combining Service and EndpointSet resources into mesh config, and reading which
 * services a `MeshConfigError` names.
 */
import { MeshConfigError, validateServiceConfig, type ServiceConfig } from '@meshlet/core';
import {
  ENDPOINT_SET_TYPE_URL,
  SERVICE_TYPE_URL,
  decodeResource,
  peekName,
  shortName,
  type DecodedResource,
  type AnyMessage,
  type EndpointJson,
  type JsonObject,
} from '../protocol/index.js';
import { setOwn } from '../protocol/struct.js';

export type ResourceType = 'service' | 'endpointSet';

export const TYPE_URLS: Record<ResourceType, string> = {
  service: SERVICE_TYPE_URL,
  endpointSet: ENDPOINT_SET_TYPE_URL,
};
export const TYPE_NAMES: Record<ResourceType, string> = { service: 'Service', endpointSet: 'EndpointSet' };

export function resourceTypeOf(typeUrl: string): ResourceType | undefined {
  return typeUrl === SERVICE_TYPE_URL ? 'service' : typeUrl === ENDPOINT_SET_TYPE_URL ? 'endpointSet' : undefined;
}

/** The resources of one type: Service configs (without endpoints) or endpoint lists, by service name. */
export type ResourceMap = Map<string, JsonObject | EndpointJson[]>;

/** A resource a response carried that this client refused, and why. `name` is `*` when unknown. */
export interface Rejection {
  name: string;
  reason: string;
}

/**
 * The last individually valid version of each resource of a type, with its bytes: a resource
 * whose bytes did not change since is neither decoded nor validated again (most of a push is
 * unchanged resources). Holds only the names of the latest response.
 */
export type ResourceMemo = Map<string, { bytes: Uint8Array; value: JsonObject | EndpointJson[] }>;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

export interface Evaluation {
  /** The resources of the type after this response: valid ones new, rejected ones at their last good version. */
  next: ResourceMap;
  rejected: Rejection[];
}

/** Name used in NACKs for a problem no resource name can be given for. */
export const UNNAMED = '*';
const MAX_REASON = 2000;

function clip(reason: string): string {
  return reason.length > MAX_REASON ? `${reason.slice(0, MAX_REASON)}…` : reason;
}

function reasonOf(err: unknown): string {
  if (err instanceof MeshConfigError) return clip(err.message);
  return clip(`invalid resource (${err instanceof Error ? err.message : String(err)})`);
}

/**
 * Checks one response's resources one by one. Each valid resource replaces its previous version;
 * each invalid one keeps its last good version (absent if it never had one); resources the
 * response does not name are removed (state of the world) — unless some resource could not even
 * be named (undecodable), since it may be one of those: then nothing is removed.
 */
export function evaluateResponse(
  type: ResourceType,
  resources: readonly AnyMessage[],
  current: ResourceMap,
  memo?: ResourceMemo,
): Evaluation {
  const typeUrl = TYPE_URLS[type];
  const rejected: Rejection[] = [];
  const valid = new Map<string, JsonObject | EndpointJson[]>();
  const refusedNames = new Set<string>();
  const seen = new Set<string>();
  let unnamed = false;
  const list = Array.isArray(resources) ? resources : [];
  const fresh: ResourceMemo = new Map();
  for (let i = 0; i < list.length; i++) {
    const any = list[i];
    let res: DecodedResource | undefined;
    let known = false;
    if (memo !== undefined && any != null && any.typeUrl === typeUrl && any.value instanceof Uint8Array) {
      const hint = peekName(any.value);
      const hit = hint === undefined ? undefined : memo.get(hint);
      if (hit !== undefined && sameBytes(hit.bytes, any.value)) {
        // Same bytes as an earlier valid version: same name, same value, same verdict.
        res =
          type === 'service'
            ? { ok: true, kind: 'service', name: hint as string, value: hit.value as JsonObject }
            : { ok: true, kind: 'endpointSet', name: hint as string, value: hit.value as EndpointJson[] };
        known = true;
      }
    }
    if (res === undefined) res = decodeResource(any, typeUrl);
    if (!res.ok) {
      if (res.name === undefined) {
        unnamed = true;
        rejected.push({ name: UNNAMED, reason: clip(`resource #${i}: ${res.reason}`) });
      } else {
        refusedNames.add(res.name);
        rejected.push({ name: shortName(res.name), reason: clip(res.reason) });
      }
      continue;
    }
    const name = res.name;
    if (seen.has(name)) {
      // Two versions of one resource in one response: neither can be trusted to be the intended one.
      valid.delete(name);
      refusedNames.add(name);
      rejected.push({ name: shortName(name), reason: 'the response holds this resource more than once' });
      continue;
    }
    seen.add(name);
    if (known) {
      valid.set(name, res.value);
      fresh.set(name, { bytes: any.value, value: res.value });
      continue;
    }
    try {
      checkResource(name, res);
      valid.set(name, res.value);
      fresh.set(name, { bytes: any.value, value: res.value });
    } catch (err) {
      refusedNames.add(name);
      rejected.push({ name: shortName(name), reason: reasonOf(err) });
    }
  }
  if (memo !== undefined) {
    memo.clear();
    for (const [name, entry] of fresh) if (!refusedNames.has(name)) memo.set(name, entry);
  }
  const next: ResourceMap = new Map();
  if (unnamed) for (const [name, value] of current) next.set(name, value);
  for (const name of refusedNames) {
    const last = current.get(name);
    if (last !== undefined) next.set(name, last);
    else next.delete(name);
  }
  for (const [name, value] of valid) if (!refusedNames.has(name)) next.set(name, value);
  return { next, rejected };
}

/**
 * Checks one incremental response (discovery.proto, `incremental`) on top of `current`: each
 * resource in it on its own, as `evaluateResponse` does (a valid one replaces its previous
 * version, an invalid one keeps its last good version or stays absent); each name in `removed`
 * is removed, a name not held is ignored; every other resource stays as it is. A name both
 * changed and removed, or carried twice, is rejected and keeps its last good version.
 */
export function evaluateIncremental(
  type: ResourceType,
  resources: readonly AnyMessage[],
  removed: readonly unknown[],
  current: ResourceMap,
  memo?: ResourceMemo,
): Evaluation {
  const typeUrl = TYPE_URLS[type];
  const rejected: Rejection[] = [];
  const next: ResourceMap = new Map(current);
  const removedNames = new Set<string>();
  const list = Array.isArray(removed) ? removed : [];
  for (const n of list) if (typeof n === 'string') removedNames.add(n);
  const seen = new Set<string>();
  const refused = new Set<string>();
  const items = Array.isArray(resources) ? resources : [];
  for (let i = 0; i < items.length; i++) {
    const any = items[i];
    const res = decodeResource(any, typeUrl);
    if (!res.ok) {
      if (res.name === undefined) rejected.push({ name: UNNAMED, reason: clip(`resource #${i}: ${res.reason}`) });
      else {
        refused.add(res.name);
        rejected.push({ name: shortName(res.name), reason: clip(res.reason) });
      }
      continue;
    }
    const name = res.name;
    if (seen.has(name)) {
      refused.add(name);
      rejected.push({ name: shortName(name), reason: 'the response holds this resource more than once' });
      continue;
    }
    seen.add(name);
    if (removedNames.has(name)) {
      refused.add(name);
      rejected.push({ name: shortName(name), reason: 'the response both changes and removes this resource' });
      continue;
    }
    const hit = memo?.get(name);
    if (hit !== undefined && sameBytes(hit.bytes, any.value)) {
      // Unchanged bytes: keep the object the client holds (the mesh's per-entry caches hit).
      next.set(name, hit.value);
      continue;
    }
    try {
      checkResource(name, res);
      next.set(name, res.value);
      memo?.set(name, { bytes: any.value, value: res.value });
    } catch (err) {
      refused.add(name);
      rejected.push({ name: shortName(name), reason: reasonOf(err) });
    }
  }
  for (const name of refused) {
    // Back to the last good version (or absent), whatever an earlier entry of this response set.
    const last = current.get(name);
    if (last !== undefined) next.set(name, last);
    else next.delete(name);
    memo?.delete(name);
  }
  for (const name of removedNames) {
    if (refused.has(name)) continue;
    next.delete(name);
    memo?.delete(name);
  }
  return { next, rejected };
}

function checkResource(name: string, res: DecodedResource & { ok: true }): void {
  if (res.kind === 'service') {
    if (Object.hasOwn(res.value, 'endpoints')) {
      throw new MeshConfigError([
        {
          path: `services.${name}.endpoints`,
          message: 'a Service resource carries no endpoints (they travel in the EndpointSet resource of the same name)',
        },
      ]);
    }
    validateServiceConfig(name, res.value);
  } else {
    validateServiceConfig(name, { endpoints: res.value });
  }
}

/**
 * The combined objects of the last `combine`, with what each was made of: a service whose Service
 * and EndpointSet values are the same objects as last time gets the same `ServiceConfig` object
 * again, so the mesh's per-entry validation cache (keyed on the entry object) hits.
 */
export type CombineCache = Map<string, { config: unknown; endpoints: unknown; out: ServiceConfig }>;

/**
 * One `ServiceConfig` per name: a Service's config plus the endpoints of the EndpointSet of the
 * same name. An EndpointSet alone makes a service with default policies; a Service alone has no
 * endpoints (unless it uses `dns`). With `cache`, unchanged services keep their object (see
 * `CombineCache`); the cache is replaced by this call's objects.
 */
export function combine(
  services: ResourceMap,
  endpointSets: ResourceMap,
  cache?: CombineCache,
): Record<string, ServiceConfig> {
  const out: Record<string, ServiceConfig> = {};
  const fresh: CombineCache | undefined = cache === undefined ? undefined : new Map();
  const put = (name: string, config: unknown, eps: unknown, make: () => ServiceConfig): void => {
    const old = cache?.get(name);
    const value = old !== undefined && old.config === config && old.endpoints === eps ? old.out : make();
    fresh?.set(name, { config, endpoints: eps, out: value });
    setOwn(out, name, value);
  };
  for (const [name, config] of services) {
    const eps = endpointSets.get(name);
    put(
      name,
      config,
      eps,
      () =>
        (eps === undefined
          ? { ...(config as JsonObject) }
          : { ...(config as JsonObject), endpoints: eps }) as unknown as ServiceConfig,
    );
  }
  for (const [name, eps] of endpointSets) {
    if (!services.has(name)) put(name, undefined, eps, () => ({ endpoints: eps }) as ServiceConfig);
  }
  if (cache !== undefined && fresh !== undefined) {
    cache.clear();
    for (const [k, v] of fresh) cache.set(k, v);
  }
  return out;
}

/** Splits a combined view back into resources (for a view read from the disk cache). */
export function split(view: Record<string, ServiceConfig>): { services: ResourceMap; endpointSets: ResourceMap } {
  const services: ResourceMap = new Map();
  const endpointSets: ResourceMap = new Map();
  for (const name of Object.keys(view)) {
    const cfg = view[name] as unknown as JsonObject;
    const copy: JsonObject = {};
    let endpoints: EndpointJson[] | undefined;
    for (const k of Object.keys(cfg)) {
      if (k === 'endpoints') endpoints = cfg[k] as unknown as EndpointJson[];
      else setOwn(copy, k, cfg[k]);
    }
    if (Object.keys(copy).length > 0 || endpoints === undefined) services.set(name, copy);
    if (endpoints !== undefined) endpointSets.set(name, endpoints);
  }
  return { services, endpointSets };
}

/**
 * The services a config error is about, by issue: the longest name `isKnown` accepts that the
 * issue's path starts with (`services.<name>` then `.`, `[` or the end).
 */
export function servicesNamed(
  issues: ReadonlyArray<{ path: string; message: string }>,
  isKnown: (name: string) => boolean,
): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const issue of issues) {
    const name = serviceOfPath(issue.path, isKnown);
    const line = `${issue.path}: ${issue.message}`;
    const key = name ?? UNNAMED;
    const list = out.get(key);
    if (list === undefined) out.set(key, [line]);
    else list.push(line);
  }
  return out;
}

function serviceOfPath(path: string, isKnown: (name: string) => boolean): string | undefined {
  if (typeof path !== 'string' || !path.startsWith('services')) return undefined;
  const rest = path.slice('services'.length);
  if (rest.startsWith('[')) {
    const m = /^\[("(?:[^"\\]|\\.)*")\]/.exec(rest);
    if (m === null) return undefined;
    try {
      const name = JSON.parse(m[1]) as string;
      return isKnown(name) ? name : undefined;
    } catch {
      return undefined;
    }
  }
  if (!rest.startsWith('.')) return undefined;
  const s = rest.slice(1);
  let found: string | undefined;
  for (let i = 1; i <= s.length; i++) {
    if (i === s.length || s[i] === '.' || s[i] === '[') {
      const name = s.slice(0, i);
      if (isKnown(name)) found = name;
    }
  }
  return found;
}
