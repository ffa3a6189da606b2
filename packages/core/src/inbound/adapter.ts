/**
 * What every inbound adapter (`meshMiddleware` of `@meshlet/http/express`,
 * `meshServerInterceptors` of `@meshlet/grpc`, …) shares, for protocol packages: the checks of
 * its factory's arguments, the per-adapter tracing switches, and the once-only warning when
 * recording a request fails. The per-request work stays in each adapter.
 */
import { ProxyTracer, ProxyTracerProvider, propagation, type Tracer } from '@opentelemetry/api';
import { MeshConfigError } from '../errors.js';
import { globalTracingOn } from '../telemetry/telemetry.js';
import type { InboundRecorder } from './recorder.js';

const NOOP_TRACER = new ProxyTracerProvider().getDelegate().getTracer('meshlet').constructor;

/**
 * Checks the arguments of an inbound adapter's factory and returns the mesh's recorder.
 * `fn` names the factory and `pkg` its package in the messages (`meshMiddleware(mesh): expected
 * the Mesh returned by createMesh() of @meshlet/core (same version as @meshlet/http)`); each key
 * of `booleans` must be absent or a boolean in `options`. Throws `MeshConfigError`.
 */
export function inboundAdapterRecorder(
  fn: string,
  pkg: string,
  mesh: unknown,
  options: unknown,
  booleans: readonly string[],
): InboundRecorder {
  const recorder = (mesh as { inbound?: InboundRecorder } | undefined)?.inbound;
  if (recorder === undefined || typeof recorder.record !== 'function') {
    throw new MeshConfigError([
      {
        path: `${fn}(mesh)`,
        message: `expected the Mesh returned by createMesh() of @meshlet/core (same version as ${pkg})`,
      },
    ]);
  }
  if (options === null || typeof options !== 'object') {
    throw new MeshConfigError([{ path: `${fn} options`, message: `expected an object, got ${String(options)}` }]);
  }
  for (const key of booleans) {
    const v: unknown = (options as Record<string, unknown>)[key];
    if (v !== undefined && typeof v !== 'boolean') {
      throw new MeshConfigError([
        { path: `${fn} options.${key}`, message: `expected true or false, got ${describe(v)}` },
      ]);
    }
  }
  return recorder;
}

/**
 * Per-adapter state shared by its requests: the recorder, whether to trust the mesh's headers,
 * and whether a tracer provider / a propagator is registered (refreshed at most once a second:
 * an SDK may start after the server).
 */
export class InboundAdapter {
  /** The tracer is a real one (and `tracing` is on). */
  tracingOn = false;
  /** A propagator is registered (and `tracing` is on). */
  propagationOn = false;
  private checkedAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly recorder: InboundRecorder,
    readonly tracer: Tracer,
    readonly trust: boolean,
    readonly tracing = true,
  ) {}

  refresh(now: number): void {
    if (now - this.checkedAt < 1000) return;
    this.checkedAt = now;
    this.tracingOn = this.tracing && tracerIsLive(this.tracer);
    this.propagationOn = this.tracing && propagation.fields().length > 0;
  }
}

/**
 * A reporter for failures to record an inbound request: accounting must never break a request,
 * so the first failure is reported as a process warning (`MESHLET_INBOUND_RECORD_FAILED`) naming
 * `what` (`an inbound request`), and later ones of the same reporter are not.
 */
export function recordFailureReporter(what: string): (err: unknown) => void {
  let warned = false;
  return function failed(err: unknown): void {
    if (warned) return;
    warned = true;
    process.emitWarning(
      `meshlet: recording ${what} failed (further failures are not reported): ${(err as Error)?.stack ?? String(err)}`,
      { code: 'MESHLET_INBOUND_RECORD_FAILED' },
    );
  };
}

/** True when `tracer` would record: not the API's no-op, nor a proxy of the global no-op provider. */
function tracerIsLive(tracer: Tracer): boolean {
  if (tracer instanceof NOOP_TRACER) return false;
  return !(tracer instanceof ProxyTracer) || globalTracingOn();
}

function describe(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : String(v);
}
