/**
 * gRPC classification (A44 for retries, Envoy's gRPC-to-health mapping for accounting):
 * - `OK` is a success;
 * - a code in `retry.retryOn` (default `UNAVAILABLE`) is retryable, and counts against the endpoint;
 * - `UNAVAILABLE`, `INTERNAL`, `UNKNOWN`, `DATA_LOSS` and `DEADLINE_EXCEEDED` not listed there are
 *   failures: they count against the endpoint (EWMA, outlier detection, breaker);
 * - every other code (`NOT_FOUND`, `INVALID_ARGUMENT`, …) is the application's answer: a success
 *   for the endpoint's health.
 * - An attempt cut by `timeout.perTryMs` is retryable; a request the mesh refused locally
 *   (`MESHLET_ERR_INVALID_REQUEST`) is the caller's fault and is never retried or counted.
 *
 * Retries never look at idempotency: as in A44, the status code alone says whether the server
 * processed the call.
 */
import type { CallContext, Classification, Classifier } from '@meshlet/core';
import { status as Status } from '@grpc/grpc-js';
import type { EndpointAttempt } from './attempt.js';
import { GRPC_STATUS_NAMES as STATUS_NAMES } from '@meshlet/core';

export const DEFAULT_GRPC_RETRY_ON: readonly string[] = ['UNAVAILABLE'];

const ENDPOINT_FAILURES = [
  Status.UNAVAILABLE,
  Status.INTERNAL,
  Status.UNKNOWN,
  Status.DATA_LOSS,
  Status.DEADLINE_EXCEEDED,
];

const SUCCESS = 0;
const RETRYABLE = 1;
const FAILURE = 2;

export class GrpcClassifier implements Classifier<EndpointAttempt> {
  /** Verdict per status code. */
  private readonly verdicts = new Uint8Array(STATUS_NAMES.length);

  constructor(retryOn: readonly string[] | undefined) {
    for (const code of ENDPOINT_FAILURES) this.verdicts[code] = FAILURE;
    let own = 0;
    for (const token of retryOn ?? []) {
      const code = STATUS_NAMES.indexOf(token);
      // A service speaking HTTP too lists HTTP tokens beside these; they are the HTTP classifier's.
      if (code > 0) {
        this.verdicts[code] = RETRYABLE;
        own++;
      }
    }
    if (own === 0) for (const t of DEFAULT_GRPC_RETRY_ON) this.verdicts[STATUS_NAMES.indexOf(t)] = RETRYABLE;
  }

  classifyResult(res: EndpointAttempt, _ctx: CallContext): Classification {
    const status = res.status;
    // Committed on its first response message: the call is under way, a success for the endpoint.
    if (status === undefined) return 'success';
    const v = status.code >= 0 && status.code < this.verdicts.length ? this.verdicts[status.code] : FAILURE;
    return v === SUCCESS ? 'success' : v === RETRYABLE ? 'retryable' : 'failure';
  }

  classifyError(err: unknown, _ctx: CallContext): Classification {
    const code = (err as { code?: unknown } | null | undefined)?.code;
    if (code === 'MESHLET_ERR_INVALID_REQUEST') return 'invalid-request';
    if (code === 'MESHLET_ERR_PER_TRY_TIMEOUT') return 'retryable';
    return 'failure';
  }
}
