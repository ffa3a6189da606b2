import type { EndpointAttempt } from './attempt.js';

/** Where an attempt reports its outcome, once (the engine's call, or a promise for retries). */
export interface AttemptSink {
  attemptResolved(res: EndpointAttempt): void;
  attemptRejected(err: unknown): void;
}
