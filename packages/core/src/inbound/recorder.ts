/**
 * `mesh.inbound`: what inbound adapters report each handled request to. Feeds the per-route,
 * per-caller table of `mesh.stats().inbound` and, unless OpenTelemetry's own server
 * instrumentation already records it, the `http.server.request.duration` histogram (HTTP) or
 * the `rpc.server.call.duration` histogram (gRPC, `protocol: 'grpc'`).
 *
 * Metric attributes (OTel semantic conventions, plus `meshlet.caller`): one frozen object per
 * (method, route, status, caller, error type), cached up to {@link MAX_ATTRIBUTE_SETS} so an SDK
 * sees the same object each time; beyond that they are built per record (still bounded in
 * cardinality by the inbound table's folding of routes and callers).
 */
import type { Attributes, Tracer } from '@opentelemetry/api';
import type { Clock } from '../clock.js';
import type { MeshTelemetry } from '../telemetry/telemetry.js';
import { grpcOutcome, grpcStatusName } from './grpc-status.js';
import {
  CANCELLED,
  FAILURE,
  InboundTable,
  OTHER,
  SUCCESS,
  UNKNOWN_CALLER,
  type InboundPair,
  type InboundStats,
} from './stats.js';

export interface InboundRecord {
  /**
   * `grpc` for a gRPC call: then `status` is its gRPC status code, `route` its full method path
   * (`/routeguide.RouteGuide/GetFeature`) and `method` is not read. Absent or `http`: an HTTP request.
   */
  protocol?: 'http' | 'grpc' | undefined;
  /** Upper-case HTTP method (gRPC: `POST`). */
  method: string;
  /** The route template (`/users/:id`), `(unmatched)` when the router matched none; gRPC: the full method path. */
  route: string;
  /** The caller's service name, undefined when unknown. */
  caller: string | undefined;
  /**
   * HTTP: the status sent (504 for a spent deadline, 499 when the caller went away first).
   * gRPC: the status code (0 `OK`, 1 `CANCELLED` when the client cancelled, 4 `DEADLINE_EXCEEDED`, …).
   */
  status: number;
  durationMs: number;
  /** Record the duration metric (false when OpenTelemetry's own server instrumentation records it). */
  metric: boolean;
  /** OTel `error.type` of a failed HTTP request (`500`, `504`, `aborted`, …). gRPC: the status name when not `OK`, set here. */
  errorType?: string | undefined;
}

export interface InboundRecorder {
  /** One handled inbound request: stats always, the duration metric when `r.metric`. */
  record(r: InboundRecord): void;
  /** The mesh's tracer (the `telemetry.tracerProvider` option, else the global provider's). */
  readonly tracer: Tracer;
}

export const SERVER_DURATION = 'http.server.request.duration';
/** The gRPC server's duration histogram (s), one point per call at its final status. */
export const RPC_SERVER_DURATION = 'rpc.server.call.duration';
const MAX_ATTRIBUTE_SETS = 4096;
/** Methods kept as they are in metric attributes; others become `_OTHER` (OTel semconv). */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

export class MeshInbound implements InboundRecorder {
  readonly table: InboundTable;
  private readonly attributeSets = new Map<string, Attributes>();

  constructor(
    private readonly telemetry: MeshTelemetry,
    private readonly clock: Clock,
    windowMs: number,
  ) {
    this.table = new InboundTable(clock, windowMs);
  }

  get tracer(): Tracer {
    return this.telemetry.tracer;
  }

  record(r: InboundRecord): void {
    if (r.protocol === 'grpc') {
      this.recordGrpc(r);
      return;
    }
    const s = r.status;
    const pair = this.table.record(
      r.route,
      r.caller,
      s === 499 ? CANCELLED : s >= 500 ? FAILURE : SUCCESS,
      r.durationMs,
    );
    if (this.metricWanted(r)) {
      this.telemetry.serverDuration(SERVER_DURATION).record(r.durationMs / 1000, this.attributes(r, pair));
    }
  }

  private recordGrpc(r: InboundRecord): void {
    const pair = this.table.record(r.route, r.caller, grpcOutcome(r.status), r.durationMs);
    if (this.metricWanted(r)) {
      this.telemetry
        .serverDuration(RPC_SERVER_DURATION)
        .record(r.durationMs / 1000, this.grpcAttributes(r.status, pair));
    }
  }

  /** The record asks for the duration metric and a meter provider is registered. */
  private metricWanted(r: InboundRecord): boolean {
    if (!r.metric) return false;
    this.telemetry.refresh(this.clock.now());
    return this.telemetry.metricsOn;
  }

  stats(): InboundStats[] {
    return this.table.stats();
  }

  /** Route and caller as the table keeps them (folded into `(other)` once it is full), so the metric's cardinality is bounded too. */
  private attributes(r: InboundRecord, pair: InboundPair): Attributes {
    const method = KNOWN_METHODS.has(r.method) ? r.method : '_OTHER';
    const caller = pair.caller === UNKNOWN_CALLER ? undefined : pair.caller;
    const errorType = r.errorType === undefined || r.errorType.length > 64 ? r.errorType && '_OTHER' : r.errorType;
    const key = `${method} ${r.status} ${errorType ?? ''} ${caller ?? ''} ${pair.route}`;
    let attrs = this.attributeSets.get(key);
    if (attrs !== undefined) return attrs;
    const a: Attributes = {
      'http.request.method': method,
      'http.route': pair.route.length > 256 ? OTHER : pair.route,
      'http.response.status_code': r.status,
    };
    if (caller !== undefined) a['meshlet.caller'] = caller;
    if (errorType !== undefined) a['error.type'] = errorType;
    attrs = Object.freeze(a);
    if (this.attributeSets.size < MAX_ATTRIBUTE_SETS) this.attributeSets.set(key, attrs);
    return attrs;
  }

  /**
   * `rpc.server.call.duration` attributes (OTel RPC semantic conventions): `rpc.system`,
   * `rpc.service` and `rpc.method` (split from the method path once per cached set),
   * `rpc.grpc.status_code`, `meshlet.caller`, and `error.type` (the status name) when not `OK`.
   */
  private grpcAttributes(status: number, pair: InboundPair): Attributes {
    const caller = pair.caller === UNKNOWN_CALLER ? undefined : pair.caller;
    // HTTP keys start with an upper-case method or `_OTHER`: no collision.
    const key = `grpc ${status} ${caller ?? ''} ${pair.route}`;
    let attrs = this.attributeSets.get(key);
    if (attrs !== undefined) return attrs;
    const route = pair.route.length > 256 ? OTHER : pair.route;
    // `/package.Service/Method`; anything else (the table's `(other)`) names neither.
    const slash = route.charCodeAt(0) === 47 ? route.indexOf('/', 1) : -1;
    const a: Attributes = {
      'rpc.system': 'grpc',
      'rpc.service': slash > 1 ? route.slice(1, slash) : OTHER,
      'rpc.method': slash > 1 && slash < route.length - 1 ? route.slice(slash + 1) : OTHER,
      'rpc.grpc.status_code': status,
    };
    if (caller !== undefined) a['meshlet.caller'] = caller;
    if (status !== 0) a['error.type'] = grpcStatusName(status);
    attrs = Object.freeze(a);
    if (this.attributeSets.size < MAX_ATTRIBUTE_SETS) this.attributeSets.set(key, attrs);
    return attrs;
  }
}
