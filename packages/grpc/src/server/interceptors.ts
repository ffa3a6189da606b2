/**
 * `meshServerInterceptors(mesh)`: the inbound side of the mesh for a grpc-js server, the gRPC
 * counterpart of `@meshlet/http/express`'s `meshMiddleware`. Per call it
 *
 * - reads the caller's deadline (grpc-js's own, from `grpc-timeout`: `call.getDeadline()`) and
 *   service name (`meshlet-caller` metadata) into the inbound context, and delivers every event
 *   to the handler (metadata, each message, the half-close, the cancel) inside
 *   `runWithInbound`, so the outbound mesh calls the handler makes — from a unary, server-,
 *   client- or bidi-streaming method — are clamped to that deadline and cancelled with the call;
 * - aborts that context's signal when the client cancels (`MESHLET_ERR_CALLER_GONE`) or the
 *   deadline passes before the answer (`MESHLET_ERR_DEADLINE`);
 * - answers `DEADLINE_EXCEEDED` without running the handler when the deadline had already passed;
 * - continues the caller's W3C trace: a SERVER span named `package.Service/Method`, parented on
 *   the context extracted from the metadata (only when a tracer provider is registered; with only
 *   a propagator the extracted context is still made current so outbound calls carry the trace);
 * - reports the call once, at its final status, to `mesh.inbound.record`: the
 *   `rpc.server.call.duration` histogram and `mesh.stats().inbound` (route = the method path).
 *
 * Ordering: put it first in the server's `interceptors` (`[...meshServerInterceptors(mesh),
 * ...yours]`): it then sees each call first, its context covers the later interceptors and the
 * handler, and it sees the status they finally send.
 *
 * grpc-js sends some statuses itself, below every interceptor: `DEADLINE_EXCEEDED` when the
 * deadline fires, `INTERNAL` for a request it cannot decode. Such a call reaches the interceptor
 * only as its cancel; a cancel at or after the deadline is recorded as `DEADLINE_EXCEEDED`, any
 * other as `CANCELLED`. A client's cancel reaches the server as a half-close followed by the
 * stream's reset (Node's http2 client ends its side before sending RST_STREAM): a client- or
 * bidi-streaming handler that answers the half-close at once has answered, and the call is
 * recorded with the status it sent.
 *
 * Hot path: one object per call (the intercepting call below, which is also the listener of the
 * next call, the inbound context and the record handed to the recorder); the AbortSignal is made
 * only when the handler's code reads it; no closures per call. Tracing work happens only when a
 * tracer provider or a propagator is registered.
 */
import { performance } from 'node:perf_hooks';
import {
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
} from '@opentelemetry/api';
import {
  ServerInterceptingCall,
  status as Status,
  type Metadata,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type ServerMethodDefinition,
} from '@grpc/grpc-js';
import {
  CALLER_HEADER,
  CallerGoneError,
  InboundAdapter,
  grpcStatusName,
  inboundAdapterRecorder,
  parseCallerHeader,
  recordFailureReporter,
  runWithInbound,
  type InboundContext,
  type InboundRecord,
  type Mesh,
} from '@meshlet/core';
import { InboundCallDeadlineError } from './errors.js';

export interface MeshServerInterceptorsOptions {
  /**
   * Read `meshlet-caller` from the call's metadata (default true). Set false on a server that
   * the public internet reaches directly: anyone can send it. (The deadline is grpc-js's own,
   * from `grpc-timeout`, which grpc-js enforces either way.)
   */
  trustMeshHeaders?: boolean;
}

/** The listener grpc-js hands `ServerInterceptingCall.start` (not exported by grpc-js). */
type Listener = Parameters<ServerInterceptingCall['start']>[0];
/** The status grpc-js hands `sendStatus`. */
type StatusOut = Parameters<ServerInterceptingCall['sendStatus']>[0];

/** Most method paths whose names and span attributes are kept (a server registers a fixed set). */
const MAX_METHODS = 4096;
/** No status has gone out yet. */
const PENDING = -1;
/** A cancel this close to the deadline (ms, Date clock: grpc-js's timer is set in whole ms) is the deadline's. */
const DEADLINE_SLACK_MS = 2;
const SPENT_DETAILS =
  "meshlet: the caller's deadline had already passed when this call arrived, so it was not handled; give the call a longer deadline at the caller";

// What `deliver` hands the next listener.
const METADATA = 0;
const MESSAGE = 1;
const HALF_CLOSE = 2;
const CANCEL = 3;
type EventKind = typeof METADATA | typeof MESSAGE | typeof HALF_CLOSE | typeof CANCEL;

/** Reads W3C trace context (or any propagator's fields) from grpc-js metadata. */
const METADATA_GETTER: TextMapGetter<Metadata> = {
  keys(carrier) {
    return Object.keys(carrier.getMap());
  },
  get(carrier, key) {
    const values = carrier.get(key);
    if (values.length === 0) return undefined;
    const v = values[0];
    return typeof v === 'string' ? v : undefined;
  },
};

/** One method path, split once: its span name and the span's constant attributes. */
class MethodInfo {
  readonly spanName: string;
  readonly attributes: Attributes;
  constructor(readonly path: string) {
    // `/package.Service/Method`
    const slash = path.indexOf('/', 1);
    const service = slash > 1 ? path.slice(1, slash) : path;
    const method = slash > 1 ? path.slice(slash + 1) : path;
    this.spanName = path.charCodeAt(0) === 47 ? path.slice(1) : path;
    this.attributes = Object.freeze({ 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method });
  }
}

/** Per-interceptor state shared by its calls: core's (recorder, trust, tracing switches) and the method paths seen. */
class Adapter extends InboundAdapter {
  private readonly methods = new Map<string, MethodInfo>();

  /** Method paths come from the server's registered handlers (grpc-js answers UNIMPLEMENTED to others first). */
  method(path: string): MethodInfo {
    let m = this.methods.get(path);
    if (m === undefined) {
      m = new MethodInfo(path);
      if (this.methods.size < MAX_METHODS) this.methods.set(path, m);
    }
    return m;
  }
}

/**
 * One inbound call: the intercepting call grpc-js sees, the listener of the call below it, the
 * inbound context its handler runs in, and the record reported at its final status.
 */
class MeshServerCall extends ServerInterceptingCall implements InboundContext, InboundRecord {
  readonly protocol = 'grpc';
  readonly method = 'POST';
  readonly route: string;
  caller: string | undefined = undefined;
  deadlineAt = Number.POSITIVE_INFINITY;
  /** The status sent (or inferred from the cancel), PENDING until then. */
  status = PENDING;
  durationMs = 0;
  readonly metric = true;
  /** grpc-js's deadline (Date clock), Infinity when the client set none. */
  private deadlineMs = Number.POSITIVE_INFINITY;
  private listener: Listener | undefined = undefined;
  /** The OTel context events are delivered in (the span's, or the caller's extracted one), if any. */
  private otel: Context | undefined = undefined;
  private span: Span | undefined = undefined;
  private controller: AbortController | undefined = undefined;
  /** Why the signal is (or, once made, will be) aborted. */
  private abortReason: Error | undefined = undefined;
  private readonly startedAt: number;

  constructor(
    private readonly adapter: Adapter,
    private readonly info: MethodInfo,
    private readonly inner: ServerInterceptingCallInterface,
  ) {
    super(inner);
    this.startedAt = performance.now();
    this.route = info.path;
  }

  /** Made on first read (only handlers that call out or listen need one); aborted when the call ends unanswered. */
  get signal(): AbortSignal {
    let c = this.controller;
    if (c === undefined) {
      c = this.controller = new AbortController();
      if (this.abortReason !== undefined) c.abort(this.abortReason);
    }
    return c.signal;
  }

  // The call grpc-js (or the next interceptor) drives.

  override start(listener: Listener): void {
    this.listener = listener;
    this.inner.start(this);
  }

  override sendMetadata(metadata: Metadata): void {
    this.inner.sendMetadata(metadata);
  }

  override sendMessage(message: unknown, callback: () => void): void {
    this.inner.sendMessage(message, callback);
  }

  // startRead, getPeer, getDeadline, getHost, … : the base class passes them to `inner`.

  override sendStatus(status: StatusOut): void {
    if (this.status === PENDING) {
      try {
        this.finish(status.code);
      } catch (err) {
        failed(err);
      }
    }
    this.inner.sendStatus(status);
  }

  // The listener of the call below: events on their way to the handler.

  onReceiveMetadata(metadata: Metadata): void {
    const a = this.adapter;
    const now = performance.now();
    a.refresh(now);
    if (a.trust) this.caller = parseCallerHeader(firstString(metadata.get(CALLER_HEADER)));
    const d = this.inner.getDeadline();
    const deadlineMs = typeof d === 'number' ? d : d.getTime();
    if (deadlineMs !== Number.POSITIVE_INFINITY) {
      this.deadlineMs = deadlineMs;
      this.deadlineAt = now + (deadlineMs - Date.now());
    }
    this.startTrace(metadata);
    if (this.deadlineAt <= now) {
      // Spent before the handler could start: the caller has given up or is about to.
      this.sendStatus({ code: Status.DEADLINE_EXCEEDED, details: SPENT_DETAILS });
      return;
    }
    this.dispatch(METADATA, metadata);
  }

  onReceiveMessage(message: unknown): void {
    this.dispatch(MESSAGE, message);
  }

  onReceiveHalfClose(): void {
    this.dispatch(HALF_CLOSE, undefined);
  }

  /** grpc-js calls this after every call (once its status is out), and when the client cancels or the deadline fires. */
  onCancel(): void {
    if (this.status === PENDING) {
      // No status went out through us: the client cancelled, or grpc-js answered on its own (the deadline).
      const expired = Date.now() + DEADLINE_SLACK_MS >= this.deadlineMs;
      try {
        this.abortReason = expired
          ? new InboundCallDeadlineError(this.route, this.deadlineAt - this.startedAt)
          : new CallerGoneError(this.route);
        this.controller?.abort(this.abortReason);
        this.finish(expired ? Status.DEADLINE_EXCEEDED : Status.CANCELLED);
      } catch (err) {
        failed(err);
      }
    }
    if (this.listener !== undefined) this.dispatch(CANCEL, undefined);
  }

  /** Hands one event to the next listener inside the call's OTel and inbound contexts. */
  private dispatch(kind: EventKind, value: unknown): void {
    if (this.otel === undefined) runWithInbound(this, deliver, this.listener!, kind, value);
    else context.with(this.otel, enter, undefined, this, this.listener!, kind, value);
  }

  /** A SERVER span under the caller's extracted context, or just that context when nothing traces. */
  private startTrace(metadata: Metadata): void {
    const a = this.adapter;
    if (!a.tracingOn) {
      if (!a.propagationOn) return;
      const active = context.active();
      const extracted = propagation.extract(active, metadata, METADATA_GETTER);
      if (extracted !== active) this.otel = extracted;
      return;
    }
    const active = context.active();
    const parent = a.propagationOn ? propagation.extract(active, metadata, METADATA_GETTER) : active;
    const span = a.tracer.startSpan(
      this.info.spanName,
      { kind: SpanKind.SERVER, attributes: this.info.attributes },
      parent,
    );
    if (this.caller !== undefined) span.setAttribute('meshlet.caller', this.caller);
    this.span = span;
    this.otel = trace.setSpan(parent, span);
  }

  /** The call's final status: the span ends and the call is recorded, once. */
  private finish(code: number): void {
    this.status = code;
    this.durationMs = performance.now() - this.startedAt;
    const span = this.span;
    if (span !== undefined) {
      span.setAttribute('rpc.grpc.status_code', code);
      if (code !== Status.OK) span.setAttribute('error.type', grpcStatusName(code));
      if (isServerError(code)) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
    this.adapter.recorder.record(this);
  }
}

function enter(call: MeshServerCall, listener: Listener, kind: EventKind, value: unknown): void {
  runWithInbound(call, deliver, listener, kind, value);
}

function deliver(listener: Listener, kind: EventKind, value: unknown): void {
  switch (kind) {
    case METADATA:
      listener.onReceiveMetadata(value as Metadata);
      return;
    case MESSAGE:
      listener.onReceiveMessage(value);
      return;
    case HALF_CLOSE:
      listener.onReceiveHalfClose();
      return;
    default:
      listener.onCancel();
  }
}

/** Server span status (OTel RPC conventions): these codes are the server's error, the others the application's answer. */
function isServerError(code: number): boolean {
  return (
    code === Status.UNKNOWN ||
    code === Status.DEADLINE_EXCEEDED ||
    code === Status.UNIMPLEMENTED ||
    code === Status.INTERNAL ||
    code === Status.UNAVAILABLE ||
    code === Status.DATA_LOSS
  );
}

function firstString(values: ReturnType<Metadata['get']>): string | undefined {
  const v = values[0];
  return typeof v === 'string' ? v : undefined;
}

/** Accounting must never break a call: a failure to record one is reported once, as a process warning. */
const failed = recordFailureReporter('an inbound gRPC call');

/**
 * Marks the interceptors made by `meshServerInterceptors` (of any mesh, any copy of this package),
 * so the zero-code start (`installGrpcZeroCode`) does not add them to a server that has them.
 */
export const MESHLET_SERVER_INTERCEPTOR: unique symbol = Symbol.for('meshlet.grpc.serverInterceptor');

/** The options that must be absent or booleans. */
const OPTION_FLAGS = ['trustMeshHeaders'] as const;

/**
 * The server interceptors for `mesh`: `new grpc.Server({ interceptors: meshServerInterceptors(mesh) })`
 * (first, before your own). Throws `MeshConfigError` for an invalid argument.
 */
export function meshServerInterceptors(mesh: Mesh, options: MeshServerInterceptorsOptions = {}): ServerInterceptor[] {
  const recorder = inboundAdapterRecorder('meshServerInterceptors', '@meshlet/grpc', mesh, options, OPTION_FLAGS);
  const adapter = new Adapter(recorder, recorder.tracer, options.trustMeshHeaders !== false);
  const interceptor = function meshlet(
    method: ServerMethodDefinition<unknown, unknown>,
    call: ServerInterceptingCallInterface,
  ): ServerInterceptingCall {
    return new MeshServerCall(adapter, adapter.method(method.path), call);
  };
  Object.defineProperty(interceptor, MESHLET_SERVER_INTERCEPTOR, { value: true });
  return [interceptor];
}
