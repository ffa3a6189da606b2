export { createMesh, Mesh, type MeshOptions, type MeshStats, type MeshListener, type SourceStatus } from './mesh.js';
export type {
  DiscoverySource,
  DiscoverySink,
  DiscoverySnapshot,
  Registration,
  RegistrationHandle,
  SourceContext,
} from './discovery/source.js';
export type { DiscoveryOptions } from './discovery/options.js';
export {
  DnsWatcher,
  type DnsTarget,
  type DnsResolverLike,
  type DnsWatcherOptions,
  type DnsEndpoint,
  type DnsTimer,
} from './discovery/dns.js';
export type { ServiceStats, EndpointStats } from './service.js';
export type { Protocol } from './protocol.js';
export type {
  AttemptSink,
  CallContext,
  CallHandle,
  Classification,
  Classifier,
  Dispatch,
  Middleware,
  Transport,
} from './types.js';
export { Endpoint, type EndpointState, type EndpointSpec } from './endpoint.js';
export { systemClock, type Clock } from './clock.js';
export { TimerQueue, type TimerEntry } from './timer-queue.js';
export type * from './config/types.js';
export { validateMeshConfig, validateServiceConfig, isServiceName, DEFAULTS } from './config/validate.js';
export type { LoadBalancerName, Picker, PickContext, PickerFactory, BalancerOptions } from './balancer/types.js';
export { buildPicker, pickerFactories, hashString } from './balancer/index.js';
export { RetryBudget } from './policy/retry-budget.js';
export { OutlierDetector } from './policy/outlier-detector.js';
export { EndpointBreaker, BreakerShared } from './policy/circuit-breaker.js';
export { ConcurrencyLimiter } from './policy/concurrency-limiter.js';
export { fullJitterBackoff } from './policy/backoff.js';
export { WindowedHistogram } from './stats/histogram.js';
export {
  MeshError,
  MeshConfigError,
  UnknownServiceError,
  NoEndpointsError,
  NoHealthyEndpointsError,
  CircuitOpenError,
  DeadlineExceededError,
  type DeadlineSource,
  OverloadedError,
  RetryBudgetExhaustedError,
  UpstreamError,
  MeshClosedError,
  CallerGoneError,
  PerTryTimeoutError,
  InvalidRequestError,
  UnsupportedError,
  NotReadyError,
  DnsResolutionError,
} from './errors.js';
export { closeMatches, didYouMean } from './util/suggest.js';
export { runWithInbound, currentInbound, type InboundContext } from './inbound/context.js';
export {
  TIMEOUT_HEADER,
  CALLER_HEADER,
  parseTimeoutHeader,
  formatTimeoutHeader,
  parseCallerHeader,
} from './inbound/headers.js';
export type { MeshTelemetry, TelemetryOptions } from './telemetry/telemetry.js';
export { SERVER_DURATION, RPC_SERVER_DURATION, type InboundRecord, type InboundRecorder } from './inbound/recorder.js';
export { GRPC_STATUS_NAMES, grpcStatusName } from './inbound/grpc-status.js';
export { InboundAdapter, inboundAdapterRecorder, recordFailureReporter } from './inbound/adapter.js';
export { UNKNOWN_CALLER, UNMATCHED_ROUTE, type InboundStats } from './inbound/stats.js';
