import { DeadlineExceededError } from '@meshlet/core';

/**
 * The reason outbound mesh calls are cut with when the inbound gRPC call they were made for
 * reaches its caller's deadline (grpc-js has then answered `DEADLINE_EXCEEDED`): a
 * `MESHLET_ERR_DEADLINE` with `source: 'inbound'`, so a handler sees the same code as when its
 * call's own clamped deadline fires first.
 */
export class InboundCallDeadlineError extends DeadlineExceededError {
  /** The inbound method path, `/routeguide.RouteGuide/GetFeature`. */
  readonly route: string;
  constructor(route: string, budgetMs: number) {
    super(route, budgetMs, 0, undefined, 'inbound');
    this.route = route;
    this.message =
      `the inbound gRPC call ${route} this call was made for reached its caller's deadline ` +
      `(${Math.round(budgetMs)} ms) before it was answered, so the call was cancelled; give the caller a ` +
      `longer deadline, or make this handler faster`;
  }
}
