/**
 * The contract between the mesh and the places its configuration comes from (a control
 * plane, a watched file, …). Core stays free of gRPC, files and YAML: a source lives in its own
 * package (`@meshlet/discovery`) and talks to the mesh through these few types only.
 *
 * A source is state-of-the-world: every `sink.update()` carries the source's whole current view
 * (every service it knows, with its endpoints), never a delta. The mesh merges the views of all
 * sources with the static `services` of `createMesh` (see `mesh.ts`, "merge rule").
 */
import type { ServiceConfig } from '../config/types.js';

/** What a process announces about itself with `mesh.register()`. */
export interface Registration {
  /** Service the endpoint serves (a service name as in the config). */
  service: string;
  /** `host:port` callers dial. */
  address: string;
  zone?: string;
  /** Relative weight, integer 1 … 1 000 000. Default 1. */
  weight?: number;
  metadata?: Record<string, string>;
}

/** A live registration: `withdraw()` removes it (idempotent). */
export interface RegistrationHandle {
  readonly registration: Readonly<Registration>;
  withdraw(): Promise<void>;
}

/** One source's whole view of the mesh. */
export interface DiscoverySnapshot {
  /** Services by name: raw config as a user would write it (validated by the mesh on merge). */
  services: Record<string, ServiceConfig>;
}

/** Given to a source by the mesh in `start()`. */
export interface DiscoverySink {
  /**
   * Replaces this source's view. The mesh validates the merged config and applies it atomically;
   * an invalid merge throws `MeshConfigError` (its issues name the service paths) and changes
   * nothing, so a source can reject what it just received (NACK) and keep serving the last good.
   * The first call marks the source ready (see `mesh.ready()`).
   */
  update(snapshot: DiscoverySnapshot): void;
  /**
   * Reports a problem that does not change the view (lost connection, failed resolution, a
   * corrupt cache file). The mesh keeps it for `mesh.sourceStatus()` and NOT_READY messages.
   */
  error(err: Error): void;
}

/** What the mesh tells a source about the process it runs in. */
export interface SourceContext {
  /** The process's own service name (`createMesh({ service })`), if given. */
  service: string | undefined;
}

/** A place configuration comes from. Sources are started by `createMesh` and closed by `mesh.close()`. */
export interface DiscoverySource {
  /** Names the source in errors and status, e.g. `control plane 127.0.0.1:15010`. */
  readonly name: string;
  /** Starts delivering. Called once, synchronously inside `createMesh`; must not throw for I/O errors (report them through `sink.error`). */
  start(sink: DiscoverySink, context: SourceContext): void;
  /** One line on what the source last saw (connected? last version? last error?), for NOT_READY messages. */
  describe(): string;
  /** Self-registration, for sources that carry it (the control plane). */
  register?(registration: Registration): Promise<RegistrationHandle>;
  /** Stops delivering and releases every resource; registrations are withdrawn. */
  close(): Promise<void>;
}
