/**
 * `@meshlet/http/nest`: `MeshModule.forRoot(options)` / `forRootAsync(...)` for NestJS on its
 * Express platform; inject the mesh with `@Inject(MESH)` and its fetch with `@Inject(MESH_FETCH)`.
 */
export {
  MeshModule,
  MESH,
  MESH_FETCH,
  type MeshModuleOptions,
  type MeshModuleConfig,
  type MeshModuleExtras,
  type MeshModuleAsyncOptions,
} from './mesh-module.js';
