/**
 * The policies one call runs under (attempts, backoff, per-try timeout, deadline, classifier):
 * the service's own, or a gRPC method's from `methods`. Built once per config by the service
 * (`Service.apply`); per call the service tier picks one (`Service.policyFor`) and the engine's
 * roles read it from the call instead of the service config. The retry budget, limiter,
 * balancer, breaker and outlier detector stay per service: they are not here.
 *
 * Cost per call: nothing for a service without `methods` (one field check); with `methods`, one
 * Map lookup once a method has been seen (the first call of a method also resolves its service's
 * `/*` entry and remembers the answer, up to MAX_REMEMBERED methods; past that, a string slice
 * and a second lookup).
 */
import type { ResolvedCallPolicy } from '../config/types.js';
import { tokensFor } from '../config/retry-on.js';
import type { Protocol } from '../protocol.js';
import type { Classifier } from '../types.js';

/** Method names remembered with their policy (bounded: method names come from callers). */
export const MAX_REMEMBERED = 1024;

export class CallPolicy {
  /** The `methods` key (undefined: the service's own policy). */
  readonly key: string | undefined;
  readonly maxAttempts: number;
  readonly backoff: { readonly baseMs: number; readonly maxMs: number };
  readonly nonIdempotent: boolean;
  readonly requestMs: number;
  readonly perTryMs: number | undefined;
  /** Config paths named by timeout errors when they are a method's (undefined: the service's own, the errors' default wording). */
  readonly requestMsPath: string | undefined;
  readonly perTryMsPath: string | undefined;
  readonly retryOn: readonly string[] | undefined;
  // One protocol calls a service almost always: the last one's classifier is kept beside the map.
  private lastProtocol: Protocol<unknown, unknown> | undefined = undefined;
  private lastClassifier: Classifier<unknown> | undefined = undefined;
  private classifiers: Map<Protocol<unknown, unknown>, Classifier<unknown>> | undefined = undefined;

  constructor(resolved: ResolvedCallPolicy) {
    this.key = resolved.key;
    this.maxAttempts = resolved.maxAttempts;
    this.backoff = resolved.backoff;
    this.nonIdempotent = resolved.nonIdempotent;
    this.requestMs = resolved.requestMs;
    this.perTryMs = resolved.perTryMs;
    this.requestMsPath = resolved.key === undefined ? undefined : resolved.requestMsPath;
    this.perTryMsPath = resolved.key === undefined ? undefined : resolved.perTryMsPath;
    this.retryOn = resolved.retryOn;
  }

  /**
   * The classifier of `protocol` under this policy, compiled once per protocol: `http` and
   * `grpc` get only their own `retryOn` tokens (their default when none is listed), so a
   * service speaking both may list tokens of both.
   */
  classifierFor<Req, Res>(protocol: Protocol<Req, Res>): Classifier<Res> {
    if (protocol === this.lastProtocol) return this.lastClassifier as Classifier<Res>;
    const key = protocol as Protocol<unknown, unknown>;
    let c = this.classifiers?.get(key);
    if (c === undefined) {
      c = protocol.classifier(tokensFor(this.retryOn, protocol.name)) as Classifier<unknown>;
      (this.classifiers ??= new Map()).set(key, c);
    }
    this.lastProtocol = key;
    this.lastClassifier = c;
    return c as Classifier<Res>;
  }
}

/** A service's `methods`: exact keys first, then the method's service's `/*`, then the service's own. */
export class MethodPolicies {
  /** Exact keys, and methods already resolved through a wildcard or to the service's own. */
  private readonly byMethod = new Map<string, CallPolicy>();
  /** `/*` entries, keyed by `package.Service`. */
  private readonly wildcards = new Map<string, CallPolicy>();
  private remembered = 0;

  constructor(
    methods: ReadonlyMap<string, ResolvedCallPolicy>,
    private readonly own: CallPolicy,
  ) {
    for (const [key, resolved] of methods) {
      const policy = new CallPolicy(resolved);
      if (key.endsWith('/*')) this.wildcards.set(key.slice(0, -2), policy);
      else this.byMethod.set(key, policy);
    }
  }

  /** The policy of `method` (`package.Service/Method`, no leading slash). */
  get(method: string): CallPolicy {
    const exact = this.byMethod.get(method);
    if (exact !== undefined) return exact;
    if (this.wildcards.size === 0) return this.own;
    // Not a gRPC method name (an HTTP call to a service that speaks both): the service's own.
    const slash = method.lastIndexOf('/');
    if (slash <= 0) return this.own;
    const policy = this.wildcards.get(method.slice(0, slash)) ?? this.own;
    if (this.remembered < MAX_REMEMBERED) {
      this.remembered++;
      this.byMethod.set(method, policy);
    }
    return policy;
  }
}
