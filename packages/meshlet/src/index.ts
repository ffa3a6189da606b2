/**
 * `meshlet`: the one package users install. It re-exports the public API of
 * `@meshlet/core` (createMesh, the errors, the config types), `@meshlet/http` (createMeshFetch,
 * createMeshDispatcher), `@meshlet/grpc` (meshGrpcOptions, meshServerInterceptors),
 * `@meshlet/discovery` (controlPlane, watchFile, readConfigFile) and the control server of
 * `@meshlet/control` (createControlServer, MemoryStore), and adds the per-process admin
 * endpoint (`startAdminServer`). The zero-code entry is the
 * `meshlet/register` subpath; the `meshlet` CLI is this package's bin.
 *
 * The five packages export no name twice (the build fails on an ambiguous `export *`), so
 * everything is re-exported under its own name. Left out on purpose: `@meshlet/control`'s CLI
 * `main` (run the `meshlet` bin instead) and the subpaths (`@meshlet/http/express`,
 * `@meshlet/http/nest`, `@meshlet/discovery/protocol`), which keep Express, Nest and the wire
 * codec optional: import them from the scoped packages.
 */
export * from '@meshlet/core';
export * from '@meshlet/http';
export * from '@meshlet/grpc';
export * from '@meshlet/discovery';
export {
  createControlServer,
  MemoryStore,
  type ControlServer,
  type ControlServerOptions,
  type ListenAddress,
  type ControlStore,
  type StoredConfig,
  type StoredRegistration,
  type ClientRecord,
  type NackRecord,
  type StoreChange,
  type ClientView,
  type ConfigView,
  type EndpointsView,
} from '@meshlet/control';
export {
  startAdminServer,
  createAdminMeterProvider,
  AdminServerError,
  type AdminServer,
  type AdminServerOptions,
} from './admin.js';
