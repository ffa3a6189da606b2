/**
 * `@meshlet/control`: the meshlet control server (`createControlServer`), its state store
 * interface (`ControlStore`, in memory: `MemoryStore`) and the `meshlet` CLI (`main`).
 */
export { createControlServer, type ControlServer, type ControlServerOptions, type ListenAddress } from './server.js';
export {
  MemoryStore,
  type ControlStore,
  type StoredConfig,
  type StoredRegistration,
  type ClientRecord,
  type NackRecord,
  type StoreChange,
} from './store.js';
export type { ClientView, ConfigView, EndpointsView } from './admin.js';
export { main } from './main.js';
