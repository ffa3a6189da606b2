/**
 * `@meshlet/discovery`: where a mesh's configuration comes from, as core `DiscoverySource`s.
 * - `controlPlane({ address })`: a meshlet control server, over one gRPC stream (ACK/NACK, last
 *   good config, disk cache, self-registration);
 * - `watchFile(path)`: a JSON or YAML file of the same shape as `createMesh` options.
 * The wire codec shared with the control server is the `@meshlet/discovery/protocol` subpath.
 */
export {
  controlPlane,
  CONTROL_PLANE_DEFAULTS,
  type ControlPlaneOptions,
  type BackoffOptions,
} from './control-plane/index.js';
export { ControlPlaneError, RegistrationError, DiscoveryCacheError, type RegistrationFailure } from './errors.js';
export * from './file/index.js';
