/**
 * The served snapshot: for each resource type, the encoded resources (once, shared by every
 * stream), the version at which the type last changed, and the plain resources for the admin
 * endpoint.
 *
 * Each changed type also gets its change from the previous version as an incremental response
 * (discovery.proto, `incremental`): the resources added or changed, and the names removed, encoded
 * once like the full one. A stream that has ACKed exactly the previous version gets it instead of
 * the full set (see stream.ts); any other stream gets the full set.
 *
 * One version counter covers the whole snapshot ("17"); it goes up by one per rebuild that changes
 * anything. A type's version is the counter's value when that type last changed, so a change to
 * endpoints alone does not resend every Service resource.
 */
import {
  ENDPOINT_SET_TYPE_URL as TYPE_URL_ENDPOINT_SET,
  SERVICE_TYPE_URL as TYPE_URL_SERVICE,
  encodeEndpointSet,
  encodeResponse,
  encodeService,
  prepareResources,
  type AnyMessage,
  type JsonObject,
  type PreparedResources,
} from '@meshlet/discovery/protocol';
import type { ResourceSet, WireEndpoint } from './resources.js';

export const SERVED_TYPES = [TYPE_URL_SERVICE, TYPE_URL_ENDPOINT_SET] as const;
export type ServedType = (typeof SERVED_TYPES)[number];

export interface TypeSnapshot {
  /** Snapshot version at which this type last changed ('' before the first build). */
  version: string;
  prepared: PreparedResources;
  /**
   * The whole response for this version, encoded once for every stream, with nonce `nonce`
   * (unique on a stream: a stream gets each version once this way; a resend of the same version
   * is encoded per stream with a nonce of its own).
   */
  response: Buffer;
  /** Nonce of `response`: a letter for the type, then the version (`S7`, `E7`). */
  nonce: string;
  /** ms since the epoch (server clock) at which `version` was built. */
  changedAt: number;
  /** Encoded Any per resource name, to compare with the next build. */
  encoded: Map<string, Uint8Array>;
  /**
   * The change from version `from` (this type's previous version) to `version`, as one
   * incremental response with nonce `nonce + 'd'`; undefined for the first version.
   */
  delta: TypeDelta | undefined;
}

export interface TypeDelta {
  /** The version this change applies on top of. */
  from: string;
  /** Resources added or changed since `from`. */
  changed: number;
  /** Names removed since `from`. */
  removed: readonly string[];
  /** The whole incremental response, encoded once for every stream. */
  response: Buffer;
  nonce: string;
}

export class SnapshotBuilder {
  private counter = 0;
  private readonly types = new Map<ServedType, TypeSnapshot>();
  /**
   * Encoded Service per name, with the config object and its JSON text it was built from: a
   * rebuild without a reload compares identities only; a reload re-encodes only what changed.
   * (Keyed by name, not by object alone: YAML aliases can share one object between services.)
   */
  private serviceByName = new Map<string, ServiceEntry>();
  private current: ResourceSet = { services: new Map(), endpointSets: new Map() };
  /** The last build's endpoint sets and their encodings, by service. */
  private endpointCache = new Map<string, { endpoints: WireEndpoint[]; any: AnyMessage }>();

  constructor(private readonly now: () => number) {
    const empty = prepareResources([]);
    for (const t of SERVED_TYPES) {
      this.types.set(t, {
        version: '',
        prepared: empty,
        response: Buffer.alloc(0),
        nonce: '',
        changedAt: 0,
        encoded: new Map(),
        delta: undefined,
      });
    }
  }

  /** The snapshot version ('0' before the first build). */
  get version(): string {
    return String(this.counter);
  }

  get resources(): ResourceSet {
    return this.current;
  }

  type(typeUrl: ServedType): TypeSnapshot {
    return this.types.get(typeUrl)!;
  }

  /**
   * Installs a new resource set. `sources` maps each service name to the config object its
   * Service resource was built from (identity-cached encoding). Returns the types that changed
   * (empty: nothing changed, the version stays).
   */
  update(set: ResourceSet, sources: ReadonlyMap<string, object>): ServedType[] {
    const services = new Map<string, Uint8Array>();
    const serviceAnys: AnyMessage[] = [];
    const serviceByName = new Map<string, ServiceEntry>();
    for (const [name, config] of set.services) {
      const source = sources.get(name) ?? config;
      let entry = this.serviceByName.get(name);
      if (entry === undefined || entry.source !== source) {
        const json = JSON.stringify(config);
        entry =
          entry !== undefined && entry.json === json
            ? { source, json, any: entry.any }
            : { source, json, any: encodeService(name, config as JsonObject) };
      }
      serviceByName.set(name, entry);
      const any = entry.any;
      services.set(name, any.value);
      serviceAnys.push(any);
    }
    const endpointSets = new Map<string, Uint8Array>();
    const endpointAnys: AnyMessage[] = [];
    const endpointCache = new Map<string, { endpoints: WireEndpoint[]; any: AnyMessage }>();
    for (const [name, endpoints] of set.endpointSets) {
      // Re-encode only the sets that changed: one registration must not re-encode the whole mesh.
      let entry = this.endpointCache.get(name);
      if (entry === undefined || !sameEndpoints(entry.endpoints, endpoints)) {
        entry = { endpoints, any: encodeEndpointSet(name, endpoints) };
      }
      endpointCache.set(name, entry);
      endpointSets.set(name, entry.any.value);
      endpointAnys.push(entry.any);
    }
    this.endpointCache = endpointCache;
    this.serviceByName = serviceByName;

    const changed: ServedType[] = [];
    const next: Array<[ServedType, Map<string, Uint8Array>, AnyMessage[]]> = [
      [TYPE_URL_SERVICE, services, serviceAnys],
      [TYPE_URL_ENDPOINT_SET, endpointSets, endpointAnys],
    ];
    for (const [typeUrl, encoded] of next) {
      const prev = this.types.get(typeUrl)!;
      if (prev.version === '' || !sameResources(prev.encoded, encoded)) changed.push(typeUrl);
    }
    this.current = set;
    if (changed.length === 0) return changed;
    this.counter += 1;
    const version = String(this.counter);
    const at = this.now();
    for (const [typeUrl, encoded, anys] of next) {
      if (!changed.includes(typeUrl)) continue;
      const prev = this.types.get(typeUrl)!;
      const prepared = prepareResources(anys);
      const nonce = (typeUrl === TYPE_URL_SERVICE ? 'S' : 'E') + version;
      const response = encodeResponse({ versionInfo: version, typeUrl, nonce, prepared });
      const delta = prev.version === '' ? undefined : encodeDelta(typeUrl, version, nonce, prev, encoded, anys);
      this.types.set(typeUrl, { version, prepared, response, nonce, changedAt: at, encoded, delta });
    }
    return changed;
  }
}

/** The incremental response from `prev` to `encoded` (`anys` in the same order as `encoded`). */
function encodeDelta(
  typeUrl: ServedType,
  version: string,
  fullNonce: string,
  prev: TypeSnapshot,
  encoded: Map<string, Uint8Array>,
  anys: readonly AnyMessage[],
): TypeDelta {
  const changedAnys: AnyMessage[] = [];
  let i = 0;
  for (const [name, bytes] of encoded) {
    const old = prev.encoded.get(name);
    if (old !== bytes && (old === undefined || !sameBytes(old, bytes))) changedAnys.push(anys[i]!);
    i++;
  }
  const removed: string[] = [];
  for (const name of prev.encoded.keys()) if (!encoded.has(name)) removed.push(name);
  const nonce = `${fullNonce}d`;
  const response = encodeResponse({
    versionInfo: version,
    typeUrl,
    nonce,
    incremental: true,
    removedResources: removed,
    prepared: prepareResources(changedAnys),
  });
  return { from: prev.version, changed: changedAnys.length, removed, response, nonce };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

interface ServiceEntry {
  source: object;
  json: string;
  any: AnyMessage;
}

function sameResources(a: Map<string, Uint8Array>, b: Map<string, Uint8Array>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, bytes] of b) {
    const old = a.get(name);
    if (old === bytes) continue;
    if (old === undefined || !Buffer.from(old.buffer, old.byteOffset, old.byteLength).equals(bytes)) return false;
  }
  return true;
}

function sameEndpoints(a: readonly WireEndpoint[], b: readonly WireEndpoint[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.address !== y.address || x.weight !== y.weight || x.zone !== y.zone) return false;
    const xk = Object.keys(x.metadata);
    if (xk.length !== Object.keys(y.metadata).length) return false;
    for (const k of xk) if (x.metadata[k] !== y.metadata[k]) return false;
  }
  return true;
}
