/**
 * Errors of the control-plane client. Each has a stable `code`; messages name the control-plane
 * address and say what to do next.
 */
import { MeshError } from '@meshlet/core';

/**
 * The control plane cannot be reached, or its stream broke (`MESHLET_ERR_CONTROL_PLANE`). Reported
 * through the mesh's source status; the mesh keeps serving its last good config meanwhile.
 */
export class ControlPlaneError extends MeshError {
  /** `host:port` of the control server. */
  readonly address: string;
  /** gRPC status code of the broken stream, when there was one. */
  readonly grpcCode: number | undefined;
  constructor(address: string, detail: string, grpcCode?: number, options?: { cause?: unknown }) {
    super(
      'MESHLET_ERR_CONTROL_PLANE',
      `control plane ${address}: ${detail}; the mesh keeps serving its last good config and reconnects with backoff: ` +
        `check that the control server runs and is reachable at ${address} (meshlet check --control ${address})`,
      options,
    );
    this.address = address;
    this.grpcCode = grpcCode;
  }
}

/**
 * Why a registration failed: `refused` (the control server rejected it; `reason` is its word),
 * `timeout` (no reply within `registrationTimeoutMs`), `closed` (the source was closed first).
 */
export type RegistrationFailure = 'refused' | 'timeout' | 'closed';

/** `mesh.register()` did not take effect (`MESHLET_ERR_REGISTRATION`). */
export class RegistrationError extends MeshError {
  readonly address: string;
  readonly service: string;
  /** The registered endpoint's address. */
  readonly endpoint: string;
  readonly failure: RegistrationFailure;
  constructor(controlAddress: string, service: string, endpoint: string, failure: RegistrationFailure, detail: string) {
    const next =
      failure === 'refused'
        ? 'fix the registration (service name, address) and register again'
        : failure === 'timeout'
          ? `check that the control server at ${controlAddress} is up (meshlet check --control ${controlAddress}), then register again`
          : 'register on an open mesh';
    super(
      'MESHLET_ERR_REGISTRATION',
      `registration of ${endpoint} for service "${service}" with control plane ${controlAddress} failed: ${detail}; ${next}`,
    );
    this.address = controlAddress;
    this.service = service;
    this.endpoint = endpoint;
    this.failure = failure;
  }
}

/**
 * The on-disk cache of the last good config could not be read, parsed or written
 * (`MESHLET_ERR_DISCOVERY_CACHE`). A bad cache file is ignored (not deleted) and the source waits
 * for the control plane instead.
 */
export class DiscoveryCacheError extends MeshError {
  readonly file: string;
  /** Whether reading (at start) or writing (after an update) failed. */
  readonly op: 'read' | 'write';
  constructor(file: string, op: 'read' | 'write', detail: string, options?: { cause?: unknown }) {
    const next =
      op === 'read'
        ? 'the file is ignored (not deleted) and the mesh waits for the control plane, whose first config rewrites it; delete or fix the file if this persists'
        : 'the previous cache file stays as it was; check the directory exists and is writable, and the disk has space';
    super('MESHLET_ERR_DISCOVERY_CACHE', `config cache ${file}: ${detail}; ${next}`, options);
    this.file = file;
    this.op = op;
  }
}
