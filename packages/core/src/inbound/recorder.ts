/**
 * `mesh.inbound`: what inbound adapters report each handled request to. Feeds the per-route,
 * per-caller table of `mesh.stats().inbound` and, unless OpenTelemetry's own server
 * instrumentation already records it, the `http.server.request.duration` histogram.
 *
 * Metric attributes (OTel semantic conventions, plus `meshlet.caller`): one frozen object per
 * (method, route, status, caller, error type), cached up to {@link MAX_ATTRIBUTE_SETS} so an SDK
 * sees the same object each time; beyond that they are built per record (still bounded in
 * cardinality by the inbound table's folding of routes and callers).
 */
import type { Attributes, Tracer } from '@opentelemetry/api';
import type { Clock } from '../clock.js';
import type { MeshTelemetry } from '../telemetry/telemetry.js';
import { InboundTable, OTHER, UNKNOWN_CALLER, type InboundPair, type InboundStats } from './stats.js';

export interface InboundRecord {
  /** Upper-case HTTP method (gRPC: `POST`). */
  method: string;
  /** The route template (`/users/:id`), `(unmatched)` when the router matched none. */
  route: string;
  /** The caller's service name, undefined when unknown. */
  caller: string | undefined;
  /** Status sent: 504 for a spent deadline, 499 when the caller went away first. */
  status: number;
  durationMs: number;
  /** Record `http.server.request.duration` (false when OpenTelemetry's own server instrumentation records it). */
  metric: boolean;
  /** OTel `error.type` of a failed request (`500`, `504`, `aborted`, …). */
  errorType?: string | undefined;
}

export interface InboundRecorder {
  /** One handled inbound request: stats always, the duration metric when `r.metric`. */
  record(r: InboundRecord): void;
  /** The mesh's tracer (the `telemetry.tracerProvider` option, else the global provider's). */
  readonly tracer: Tracer;
}

export const SERVER_DURATION = 'http.server.request.duration';
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
    const pair = this.table.record(r.route, r.caller, r.status, r.durationMs);
    if (!r.metric) return;
    const t = this.telemetry;
    t.refresh(this.clock.now());
    if (!t.metricsOn) return;
    t.serverDuration(SERVER_DURATION).record(r.durationMs / 1000, this.attributes(r, pair));
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
}
