export { controlPlane, ControlPlaneSource, CLIENT_VERSION } from './client.js';
export { CONTROL_PLANE_DEFAULTS, type ControlPlaneOptions, type BackoffOptions } from './options.js';
