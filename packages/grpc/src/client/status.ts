/**
 * How the mesh's own errors reach a grpc-js caller: as a status with the numeric code a grpc-js
 * user expects (`err.code`), details that start with the meshlet code and name the service and
 * method, and two extra fields grpc-js copies onto its `ServiceError`: `meshletCode` and `cause`
 * (the MeshError itself).
 */
import { Metadata, status as Status, type StatusObject } from '@grpc/grpc-js';

/** A grpc-js status carrying the mesh error it was made from. */
export interface MeshStatusObject extends StatusObject {
  /** The meshlet error code (`MESHLET_ERR_…`), when the mesh ended the call. */
  meshletCode?: string;
  /** The error the mesh ended the call with. */
  cause?: unknown;
}

const CODE_OF_MESH_ERROR: Record<string, number> = {
  MESHLET_ERR_UNKNOWN_SERVICE: Status.UNAVAILABLE,
  MESHLET_ERR_NO_ENDPOINTS: Status.UNAVAILABLE,
  MESHLET_ERR_NO_HEALTHY_ENDPOINTS: Status.UNAVAILABLE,
  MESHLET_ERR_CIRCUIT_OPEN: Status.UNAVAILABLE,
  MESHLET_ERR_CLOSED: Status.UNAVAILABLE,
  MESHLET_ERR_NOT_READY: Status.UNAVAILABLE,
  MESHLET_ERR_UPSTREAM: Status.UNAVAILABLE,
  MESHLET_ERR_BUDGET_EXHAUSTED: Status.UNAVAILABLE,
  MESHLET_ERR_PER_TRY_TIMEOUT: Status.UNAVAILABLE,
  MESHLET_ERR_DEADLINE: Status.DEADLINE_EXCEEDED,
  MESHLET_ERR_OVERLOADED: Status.RESOURCE_EXHAUSTED,
  MESHLET_ERR_CALLER_GONE: Status.CANCELLED,
  MESHLET_ERR_INVALID_REQUEST: Status.INTERNAL,
  MESHLET_ERR_UNSUPPORTED: Status.UNIMPLEMENTED,
};

/** The caller cancelled the call (`call.cancel()`, or a grpc-js parent call's cancellation). */
export class CallCancelledError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(details);
    this.name = 'CallCancelledError';
  }
}

/**
 * The status a call ends with when the mesh (not an endpoint) ended it. `method` is the short
 * method name, put after the service in the details (`service "rg" method GetFeature: …`).
 */
export function statusOfError(err: unknown, service: string, method: string): MeshStatusObject {
  if (err instanceof CallCancelledError) {
    return { code: err.code, details: err.details, metadata: new Metadata() };
  }
  const meshletCode =
    typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined;
  let code = meshletCode !== undefined ? CODE_OF_MESH_ERROR[meshletCode] : undefined;
  if (code === undefined) {
    // A cancellation reason that is not a mesh error (an AbortSignal's DOMException, say).
    code = (err as { name?: unknown })?.name === 'AbortError' ? Status.CANCELLED : Status.UNKNOWN;
  }
  const message = err instanceof Error ? err.message : String(err);
  const prefix = `service "${service}"`;
  const named = message.startsWith(prefix)
    ? `${prefix} method ${method}${message.slice(prefix.length)}`
    : `service "${service}" method ${method}: ${message}`;
  const status: MeshStatusObject = {
    code,
    details: meshletCode !== undefined && meshletCode.startsWith('MESHLET_ERR_') ? `${meshletCode}: ${named}` : named,
    metadata: new Metadata(),
    cause: err,
  };
  if (meshletCode !== undefined && meshletCode.startsWith('MESHLET_ERR_')) status.meshletCode = meshletCode;
  return status;
}
