/**
 * gRPC status codes as the inbound side reports them: their names (OTel's `error.type`) and how
 * the inbound table counts each. Core does not depend on grpc-js; the codes are gRPC's, fixed by
 * its specification (`doc/statuscodes.md`).
 */
import { CANCELLED, FAILURE, SUCCESS, type InboundOutcome } from './stats.js';

/** gRPC status names by code (0 `OK` … 16 `UNAUTHENTICATED`). */
export const GRPC_STATUS_NAMES: readonly string[] = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/** The name of a gRPC status code; a code outside the specification is reported as its number. */
export function grpcStatusName(code: number): string {
  return GRPC_STATUS_NAMES[code] ?? String(code);
}

/**
 * How the inbound table counts a gRPC status: `CANCELLED` (1) is the caller's departure;
 * `UNKNOWN` (2), `DEADLINE_EXCEEDED` (4), `INTERNAL` (13), `UNAVAILABLE` (14) and `DATA_LOSS` (15)
 * are failures of this server (the statuses the client side counts against an endpoint); `OK`
 * and the other specified codes are the application's answer, hence successes.
 */
export function grpcOutcome(code: number): InboundOutcome {
  switch (code) {
    case 1:
      return CANCELLED;
    case 2:
    case 4:
    case 13:
    case 14:
    case 15:
      return FAILURE;
    default:
      // A code outside the specification is read as UNKNOWN, as gRPC clients do.
      return code >= 0 && code <= 16 ? SUCCESS : FAILURE;
  }
}
