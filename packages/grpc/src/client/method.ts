/**
 * What a call's gRPC method path (`/routeguide.RouteGuide/GetFeature`) says, parsed once per
 * method per channel, and the frozen attribute sets of its `rpc.client.call.duration` points.
 */
import type { Attributes } from '@opentelemetry/api';
import type { Endpoint } from '@meshlet/core';
import { grpcStatusName as statusName } from '@meshlet/core';

/** Attribute sets kept per method; past it, points get fresh objects (still correct). */
const ATTRIBUTE_SETS_PER_METHOD = 512;

export class MethodInfo {
  /** `/routeguide.RouteGuide/GetFeature` (routes match it). */
  readonly path: string;
  /** `routeguide.RouteGuide/GetFeature` (per-method config keys, span name). */
  readonly method: string;
  /** `GetFeature` (`rpc.method`). */
  readonly short: string;
  /** `routeguide.RouteGuide` (`rpc.service`). */
  readonly rpcService: string;
  private readonly attributeSets = new Map<string, Attributes>();
  /** Semantic-convention attributes of the call's client span. */
  readonly spanAttributes: Attributes;

  constructor(path: string) {
    this.path = path;
    this.method = path.startsWith('/') ? path.slice(1) : path;
    const slash = this.method.lastIndexOf('/');
    this.short = slash === -1 ? this.method : this.method.slice(slash + 1);
    this.rpcService = slash === -1 ? '' : this.method.slice(0, slash);
    this.spanAttributes = Object.freeze({
      'rpc.system': 'grpc',
      'rpc.service': this.rpcService,
      'rpc.method': this.short,
    });
  }

  /** Attributes of one call's duration point: its final status and the endpoint of its last attempt. */
  attributes(service: string, code: number, ep: Endpoint | undefined): Attributes {
    const key = ep === undefined ? String(code) : `${code} ${ep.address}`;
    let a = this.attributeSets.get(key);
    if (a !== undefined) return a;
    const attrs: Attributes = {
      'rpc.system': 'grpc',
      'rpc.service': this.rpcService,
      'rpc.method': this.short,
      'rpc.grpc.status_code': code,
      'meshlet.service': service,
    };
    if (ep !== undefined) {
      attrs['server.address'] = ep.host;
      attrs['server.port'] = ep.port;
    }
    if (code !== 0) attrs['error.type'] = statusName(code);
    a = Object.freeze(attrs);
    if (this.attributeSets.size < ATTRIBUTE_SETS_PER_METHOD) this.attributeSets.set(key, a);
    return a;
  }
}
