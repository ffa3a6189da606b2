/**
 * The gRPC protocol for the mesh engine: the transport leaf (one attempt = one grpc-js call on
 * the picked endpoint's channel, driven by `MeshGrpcCall.beginAttempt`), the classifier, and the
 * request facts routing and hashing read (the method path; metadata as headers). No per-attempt
 * duration point (`durationMetric` undefined): `rpc.client.call.duration` is recorded once per
 * call, at its final status, by the per-mesh state.
 */
import type { Attributes } from '@opentelemetry/api';
import type { Protocol, AttemptSink } from '@meshlet/core';
import type { EndpointAttempt } from './attempt.js';
import type { MeshGrpcCall } from './call.js';
import { GrpcClassifier } from './classifier.js';
import { grpcStatusName as statusName } from '@meshlet/core';

const NO_ATTRIBUTES: Attributes = Object.freeze({});

export function createGrpcProtocol(): Protocol<MeshGrpcCall, EndpointAttempt> {
  return {
    name: 'grpc',
    durationMetric: undefined,
    transport(req, ctx, ep) {
      const promise = new Promise<EndpointAttempt>(capture);
      const target = new PromiseTarget(captured.resolve!, captured.reject!);
      captured.resolve = captured.reject = undefined;
      req.beginAttempt(ctx, ep, target);
      return promise;
    },
    start(req, ctx, ep, sink) {
      req.beginAttempt(ctx, ep, sink);
    },
    classifier: (retryOn) => new GrpcClassifier(retryOn),
    method: (req) => req.info.method,
    path: (req) => req.info.path,
    header: (req, name) => {
      const values = req.metadata?.get(name);
      if (values === undefined || values.length === 0) return undefined;
      const v = values[0];
      return typeof v === 'string' ? v : undefined;
    },
    // A44: the status code alone says whether a call may be sent again; only the replay buffer limits it.
    replayable: (req) => req.replayable,
    discard: (res) => res.owner.discard(res),
    // Committed on its first message: the status that says how the call went is still to come
    // (MeshGrpcCall.finish reports it).
    provisional: (res) => res.status === undefined,
    spanName: (req) => req.info.method,
    bindCall: (req, call) => req.bind(call),
    deliver: (req, res) => req.answer(res),
    fail: (req, err) => req.fail(err),
    callerTimeoutMs: (req) => (req.deadlineMs === Infinity ? undefined : req.deadlineMs - Date.now()),
    attemptAttributes: () => NO_ATTRIBUTES,
    failureReason: (res) =>
      res.status === undefined ? 'failed' : `${statusName(res.status.code)}: ${res.status.details}`,
    attemptStatus: (res, err) =>
      res !== undefined
        ? res.status === undefined
          ? 'OK'
          : statusName(res.status.code)
        : (((err as { code?: unknown } | undefined)?.code as string | undefined) ?? 'error'),
  };
}

class PromiseTarget implements AttemptSink<EndpointAttempt> {
  constructor(
    private readonly resolve: (v: EndpointAttempt) => void,
    private readonly reject: (e: unknown) => void,
  ) {}
  attemptResolved(res: EndpointAttempt): void {
    this.resolve(res);
  }
  attemptRejected(err: unknown): void {
    this.reject(err);
  }
}

const captured: { resolve: ((v: EndpointAttempt) => void) | undefined; reject: ((e: unknown) => void) | undefined } = {
  resolve: undefined,
  reject: undefined,
};
function capture(resolve: (v: EndpointAttempt) => void, reject: (e: unknown) => void): void {
  captured.resolve = resolve;
  captured.reject = reject;
}
