/**
 * `meshMiddleware(mesh)`: the inbound side of the mesh for Express 5 (and 4; the signature is
 * the same). Per request it
 *
 * - reads the caller's remaining budget (`meshlet-timeout`) into a deadline and its service name
 *   (`meshlet-caller`), and runs the rest of the chain inside `runWithInbound`, so every outbound
 *   mesh call the handler makes is clamped to that deadline and cancelled if the caller goes away;
 * - answers 504 at once, without running the handler, when the budget is already spent;
 * - continues the caller's W3C trace: a SERVER span parented on the extracted context, or, when
 *   OpenTelemetry's http instrumentation already made the request's server span, that span
 *   enriched (`http.route`, `meshlet.caller`) and no metric of ours (no double spans or metrics);
 * - reports the request once to `mesh.inbound.record` when the response finishes or the
 *   connection closes first (499).
 *
 * Ordering: mount it first (`app.use(meshMiddleware(mesh))`), before body parsers and routes, so
 * its clock starts with the request and every later middleware runs inside its context.
 *
 * Hot path: one object per request (the state below, which is also the inbound context and the
 * record handed to the recorder); the AbortSignal is made only if an outbound call reads it; no
 * closures per request (the response listeners are shared functions). Tracing work happens
 * only when a tracer provider or a propagator is registered.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
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
} from '@opentelemetry/api';
import {
  CALLER_HEADER,
  CallerGoneError,
  InboundAdapter as Adapter,
  TIMEOUT_HEADER,
  inboundAdapterRecorder,
  parseCallerHeader,
  parseTimeoutHeader,
  recordFailureReporter,
  runWithInbound,
  type InboundContext,
  type InboundRecord,
  type Mesh,
} from '@meshlet/core';
import { UNMATCHED, routeTemplate, type ExpressLikeRequest } from './route.js';

export interface MeshMiddlewareOptions {
  /**
   * Read `meshlet-timeout` and `meshlet-caller` from requests. Default true. Set false on a
   * service that the public internet reaches directly: anyone can send those headers, and a
   * forged `meshlet-timeout: 0m` would have every request answered 504.
   */
  trustMeshHeaders?: boolean;
  /**
   * Continue the caller's W3C trace context and trace each request (default true). No work is
   * done while no tracer provider and no propagator are registered.
   */
  tracing?: boolean;
}

/** The middleware; `(req, res, next)` as Express 4 and 5 (and Nest on Express) call it. */
export type MeshMiddleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/** Body of the 504 answered when the caller's budget was spent before the handler could run. */
const SPENT_BODY =
  "meshlet: the caller's deadline (meshlet-timeout) had already passed when this request arrived, so it was not handled; give the call a longer timeout.requestMs at the caller.\n";
const SPENT_HEADERS = {
  'content-type': 'text/plain; charset=utf-8',
  'content-length': String(Buffer.byteLength(SPENT_BODY)),
};
/** The context key OpenTelemetry's http instrumentation stores its per-request metadata under (`@opentelemetry/core`). */
const RPC_METADATA = Symbol.for('OpenTelemetry SDK Context Key RPC_METADATA');
/** Methods OTel's semantic conventions name; others are reported as `_OTHER`. */
const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
  'QUERY',
]);
const STATE = Symbol('meshlet.inbound');

/** Mutable part of the OTel http instrumentation's RPC metadata (`{ type: 'http', span, route? }`). */
interface RpcMetadata {
  type?: unknown;
  span?: Span;
  route?: string;
}

type Request = IncomingMessage & ExpressLikeRequest;
type Response = ServerResponse & { [STATE]?: InboundCall };

/**
 * One inbound request: its inbound context (deadline, caller, signal), its span, and the record
 * reported when it ends.
 */
class InboundCall implements InboundContext, InboundRecord {
  route = UNMATCHED;
  status = 0;
  durationMs = 0;
  metric = true;
  errorType: string | undefined = undefined;
  span: Span | undefined = undefined;
  /** The span is ours to end (false: OTel's http instrumentation owns it). */
  ownSpan = false;
  rpc: RpcMetadata | undefined = undefined;
  done = false;
  private controller: AbortController | undefined = undefined;
  private gone = false;

  constructor(
    readonly adapter: Adapter,
    readonly req: Request,
    readonly start: number,
    readonly deadlineAt: number,
    readonly caller: string | undefined,
    readonly method: string,
  ) {}

  /** Made on first read (only handlers that call out need one); aborted when the caller goes away. */
  get signal(): AbortSignal {
    let c = this.controller;
    if (c === undefined) {
      c = this.controller = new AbortController();
      if (this.gone) c.abort(callerGone());
    }
    return c.signal;
  }

  callerGone(): void {
    this.gone = true;
    this.controller?.abort(callerGone());
  }
}

/** The reason outbound calls made for this request are cut with: a MeshError, so `fetch` rejects with it. */
function callerGone(): CallerGoneError {
  return new CallerGoneError();
}

/** The options that must be absent or booleans. */
const OPTION_FLAGS = ['trustMeshHeaders', 'tracing'] as const;

/**
 * The inbound middleware for `mesh`. Mount it first: `app.use(meshMiddleware(mesh))`.
 * Throws `MeshConfigError` for an invalid option.
 */
export function meshMiddleware(mesh: Mesh, options: MeshMiddlewareOptions = {}): MeshMiddleware {
  const recorder = inboundAdapterRecorder('meshMiddleware', '@meshlet/http', mesh, options, OPTION_FLAGS);
  const adapter = new Adapter(recorder, recorder.tracer, options.trustMeshHeaders !== false, options.tracing !== false);
  return function meshlet(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void {
    handle(adapter, req as Request, res as Response, next);
  };
}

function handle(adapter: Adapter, req: Request, res: Response, next: (err?: unknown) => void): void {
  if (res[STATE] !== undefined) {
    // Mounted twice (e.g. by MeshModule and by hand): the first one already covers this request.
    next();
    return;
  }
  const start = performance.now();
  adapter.refresh(start);
  let budget: number | undefined;
  let caller: string | undefined;
  if (adapter.trust) {
    const headers = req.headers;
    budget = parseTimeoutHeader(headers[TIMEOUT_HEADER]);
    caller = parseCallerHeader(headers[CALLER_HEADER]);
  }
  const method = req.method ?? 'GET';
  const call = new InboundCall(
    adapter,
    req,
    start,
    budget === undefined ? Number.POSITIVE_INFINITY : start + budget,
    caller,
    method,
  );
  res[STATE] = call;
  res.on('finish', onFinish);
  res.on('close', onClose);

  const ctx = startTrace(adapter, call, req);

  if (budget !== undefined && budget <= 0) {
    // Spent before we could start: the caller has given up or is about to; do not run the handler.
    if (res.headersSent) res.end();
    else res.writeHead(504, SPENT_HEADERS).end(SPENT_BODY);
    return;
  }
  if (ctx === undefined) runWithInbound(call, next);
  else context.with(ctx, runWithInbound, undefined, call, next);
}

/**
 * Continues the trace: enriches the server span OTel's http instrumentation made, or starts
 * ours under the caller's extracted context. Returns the context to run the chain in, or
 * undefined to keep the current one. Also decides `metric`: OTel's instrumentation, when
 * present, records the duration itself (even with `tracing: false`).
 */
function startTrace(adapter: Adapter, call: InboundCall, req: Request): Context | undefined {
  const active = context.active();
  const rpc = active.getValue(RPC_METADATA) as RpcMetadata | undefined;
  const existing = rpc?.type === 'http' ? rpc.span : serverSpanOf(trace.getSpan(active));
  if (existing !== undefined) {
    // OTel's instrumentation owns the span and the duration metric; we add what it cannot know.
    // Its duration metric too, whether or not we trace: never count a request twice.
    call.metric = false;
    if (!adapter.tracing) return undefined;
    call.span = existing;
    call.rpc = rpc?.type === 'http' ? rpc : undefined;
    if (call.caller !== undefined && existing.isRecording()) existing.setAttribute('meshlet.caller', call.caller);
    return undefined;
  }
  if (!adapter.tracing) return undefined;
  if (!adapter.tracingOn) {
    // No SDK: still carry the caller's context so outbound calls forward its trace id.
    return adapter.propagationOn ? propagation.extract(active, req.headers) : undefined;
  }
  const parent = adapter.propagationOn ? propagation.extract(active, req.headers) : active;
  const method = call.method;
  const attributes: Attributes = {
    'http.request.method': KNOWN_METHODS.has(method) ? method : '_OTHER',
    'url.scheme': 'http',
    'url.path': pathOf(req.url),
  };
  if (!KNOWN_METHODS.has(method)) attributes['http.request.method_original'] = method;
  if (call.caller !== undefined) attributes['meshlet.caller'] = call.caller;
  const ua = req.headers['user-agent'];
  if (typeof ua === 'string') attributes['user_agent.original'] = ua;
  if (req.httpVersion) attributes['network.protocol.version'] = req.httpVersion;
  const span = adapter.tracer.startSpan(method, { kind: SpanKind.SERVER, attributes }, parent);
  call.span = span;
  call.ownSpan = true;
  return trace.setSpan(parent, span);
}

/** A span that is a SERVER span (SDK spans expose `kind`), made by another server instrumentation. */
function serverSpanOf(span: Span | undefined): Span | undefined {
  if (span === undefined || span.spanContext().isRemote) return undefined;
  return (span as { kind?: unknown }).kind === SpanKind.SERVER ? span : undefined;
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** `res` 'finish': the response was sent in full. */
function onFinish(this: Response): void {
  const call = this[STATE];
  if (call === undefined || call.done) return;
  try {
    end(call, this.statusCode, false);
  } catch (err) {
    failed(err);
  }
}

/** `res` 'close': after 'finish' nothing to do; before it, the caller went away (499). */
function onClose(this: Response): void {
  const call = this[STATE];
  if (call === undefined || call.done) return;
  try {
    call.callerGone();
    end(call, 499, true);
  } catch (err) {
    failed(err);
  }
}

/**
 * A listener of `res` must not throw (it would be an uncaught exception in the server): a failure
 * to account for one request is reported once, as a process warning, and the server carries on.
 */
const failed = recordFailureReporter('an inbound request');

const ERROR_TYPES: string[] = [];

function end(call: InboundCall, status: number, aborted: boolean): void {
  call.done = true;
  call.durationMs = performance.now() - call.start;
  call.status = status;
  call.route = routeTemplate(call.req);
  call.errorType = aborted ? 'aborted' : status >= 500 ? (ERROR_TYPES[status] ??= String(status)) : undefined;
  const span = call.span;
  if (span !== undefined) {
    if (call.ownSpan) endOwnSpan(call, span, aborted);
    else if (call.route !== UNMATCHED) {
      // OTel's http instrumentation reads the route from its RPC metadata when the response
      // closes (after 'finish'), naming the span and setting `http.route` on span and metric.
      if (call.rpc !== undefined) call.rpc.route = call.route;
      else if (span.isRecording()) span.setAttribute('http.route', call.route);
    }
  }
  call.adapter.recorder.record(call);
}

function endOwnSpan(call: InboundCall, span: Span, aborted: boolean): void {
  if (call.route !== UNMATCHED) {
    span.setAttribute('http.route', call.route);
    span.updateName(`${call.method} ${call.route}`);
  }
  if (aborted) {
    span.setAttribute('error.type', 'aborted');
  } else {
    span.setAttribute('http.response.status_code', call.status);
    if (call.status >= 500) {
      span.setAttribute('error.type', call.errorType!);
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }
  span.end();
}
