/**
 * `MeshModule` for NestJS (Express platform): provides the Mesh and a mesh fetch through
 * dependency injection (tokens {@link MESH} and {@link MESH_FETCH}), installs `meshMiddleware`
 * for every route, and closes the mesh when the application shuts down (when the module created
 * it, unless `closeOnShutdown` says otherwise).
 *
 * Written without decorator syntax (our build has no `experimentalDecorators`): Nest's
 * decorators are applied as plain functions at the bottom of the file, which is all the syntax
 * does. Every constructor dependency is named with `Inject`, so no decorator metadata is needed.
 */
import {
  Inject,
  Module,
  type DynamicModule,
  type InjectionToken,
  type MiddlewareConsumer,
  type ModuleMetadata,
  type NestModule,
  type OnApplicationShutdown,
  type OptionalFactoryDependency,
  type Provider,
} from '@nestjs/common';
import { createMesh, MeshConfigError, type Mesh, type MeshOptions } from '@meshlet/core';
import type { MeshDispatcherOptions } from '../dispatcher.js';
import { createMeshFetch, type MeshFetch } from '../fetch.js';
import { meshMiddleware, type MeshMiddleware, type MeshMiddlewareOptions } from '../express/middleware.js';

/** Injection token of the `Mesh`: `constructor(@Inject(MESH) mesh: Mesh)`. */
export const MESH = Symbol('@meshlet/http/nest:MESH');
/** Injection token of the mesh fetch (`createMeshFetch(mesh, options.fetch)`): `@Inject(MESH_FETCH) fetch: MeshFetch`. */
export const MESH_FETCH = Symbol('@meshlet/http/nest:MESH_FETCH');
/** The options `forRoot`/`forRootAsync` resolved to (internal). */
const MESH_MODULE_OPTIONS = Symbol('@meshlet/http/nest:options');
/** The mesh, fetch and middleware built from those options (internal). */
const MESH_STATE = Symbol('@meshlet/http/nest:state');

/** What `MeshModule` adds beside the mesh: its fetch, its middleware and its lifecycle. */
export interface MeshModuleExtras {
  /** Options of the injected mesh fetch (`createMeshFetch(mesh, fetch)`). */
  fetch?: MeshDispatcherOptions;
  /** Options of the inbound middleware installed for all routes; `false` installs none. */
  middleware?: MeshMiddlewareOptions | false;
  /** Close the mesh on application shutdown. Default: true when the module created the mesh, false for a given `mesh`. */
  closeOnShutdown?: boolean;
}

/**
 * `MeshModule.forRoot` options: `createMesh` options (the module builds the mesh), or an
 * existing `mesh`; either with {@link MeshModuleExtras}.
 */
export type MeshModuleOptions = (MeshOptions & { mesh?: undefined }) | { mesh: Mesh };
export type MeshModuleConfig = MeshModuleOptions & MeshModuleExtras;

export interface MeshModuleAsyncOptions {
  /** Modules exporting the providers `inject` names. */
  imports?: ModuleMetadata['imports'];
  /** Providers passed to `useFactory`, in order. */
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
  /** Returns the same options as `forRoot` takes (or a promise of them). */
  useFactory: (...args: any[]) => MeshModuleConfig | Promise<MeshModuleConfig>;
  /** Register the tokens globally (default true), so any module can inject them. */
  global?: boolean;
}

interface MeshState {
  mesh: Mesh;
  fetch: MeshFetch;
  middleware: MeshMiddleware | undefined;
  closeOnShutdown: boolean;
}

/** Duck-typed, so a Mesh from another copy of @meshlet/core (e.g. through the meshlet umbrella) is accepted. */
function isMesh(v: unknown): v is Mesh {
  const m = v as Partial<Mesh> | null;
  return (
    typeof m === 'object' &&
    m !== null &&
    typeof m.call === 'function' &&
    typeof m.close === 'function' &&
    typeof m.subscribe === 'function' &&
    typeof m.inbound?.record === 'function'
  );
}

const EXTRA_KEYS = new Set(['mesh', 'fetch', 'middleware', 'closeOnShutdown']);

/** Builds the module's state; throws MeshConfigError naming `MeshModule.forRoot(...)` paths. */
function buildState(options: unknown): MeshState {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new MeshConfigError([
      {
        path: 'MeshModule.forRoot(options)',
        message: `expected createMesh options or { mesh }, got ${options === null ? 'null' : typeof options}`,
      },
    ]);
  }
  const o = options as MeshModuleConfig & Record<string, unknown>;
  const closeOnShutdown = o.closeOnShutdown;
  if (closeOnShutdown !== undefined && typeof closeOnShutdown !== 'boolean') {
    throw new MeshConfigError([
      {
        path: 'MeshModule.forRoot(options).closeOnShutdown',
        message: `expected true or false, got ${typeof closeOnShutdown}`,
      },
    ]);
  }
  let mesh: Mesh;
  let owned: boolean;
  if (o.mesh !== undefined) {
    if (!isMesh(o.mesh)) {
      throw new MeshConfigError([
        {
          path: 'MeshModule.forRoot(options).mesh',
          message: 'expected a Mesh from createMesh() of @meshlet/core (the version @meshlet/http depends on)',
        },
      ]);
    }
    const stray = Object.keys(o).filter((k) => !EXTRA_KEYS.has(k));
    if (stray.length > 0) {
      throw new MeshConfigError([
        {
          path: `MeshModule.forRoot(options).${stray[0]}`,
          message: `a given mesh is already configured; pass either { mesh } or createMesh options, not both (found ${stray.join(', ')})`,
        },
      ]);
    }
    mesh = o.mesh;
    owned = false;
  } else {
    const meshOptions: Record<string, unknown> = {};
    for (const k of Object.keys(o)) if (!EXTRA_KEYS.has(k)) meshOptions[k] = o[k];
    mesh = createMesh(meshOptions as MeshOptions);
    owned = true;
  }
  try {
    return {
      mesh,
      fetch: createMeshFetch(mesh, o.fetch),
      middleware: o.middleware === false ? undefined : meshMiddleware(mesh, o.middleware ?? {}),
      closeOnShutdown: closeOnShutdown ?? owned,
    };
  } catch (err) {
    // Do not leave a mesh we made (its timers, its sources) behind a failed start.
    if (owned) void mesh.close();
    throw err;
  }
}

export class MeshModule implements NestModule, OnApplicationShutdown {
  constructor(private readonly state: MeshState) {}

  /** Installs the inbound middleware for every route. */
  configure(consumer: MiddlewareConsumer): void {
    if (this.state.middleware !== undefined) consumer.apply(this.state.middleware).forRoutes('*');
  }

  /** Closes the mesh (in-flight calls get its grace period) when the module owns it or was told to. */
  async onApplicationShutdown(): Promise<void> {
    if (this.state.closeOnShutdown) await this.state.mesh.close();
  }

  /**
   * The module with a mesh built from `options` (createMesh options), or the given `options.mesh`.
   * Global: `MESH` and `MESH_FETCH` can be injected anywhere.
   */
  static forRoot(options: MeshModuleConfig): DynamicModule {
    return dynamicModule([{ provide: MESH_MODULE_OPTIONS, useValue: options }], [], true);
  }

  /** The module with options from a factory (e.g. a config service): `{ imports, inject, useFactory }`. */
  static forRootAsync(options: MeshModuleAsyncOptions): DynamicModule {
    if (options === null || typeof options !== 'object' || typeof options.useFactory !== 'function') {
      throw new MeshConfigError([
        {
          path: 'MeshModule.forRootAsync(options).useFactory',
          message: 'expected a function returning the module options',
        },
      ]);
    }
    return dynamicModule(
      [{ provide: MESH_MODULE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] }],
      options.imports ?? [],
      options.global ?? true,
    );
  }
}

function dynamicModule(
  optionProviders: Provider[],
  imports: NonNullable<ModuleMetadata['imports']>,
  global: boolean,
): DynamicModule {
  return {
    module: MeshModule,
    global,
    imports,
    providers: [
      ...optionProviders,
      { provide: MESH_STATE, useFactory: buildState, inject: [MESH_MODULE_OPTIONS] },
      { provide: MESH, useFactory: (s: MeshState) => s.mesh, inject: [MESH_STATE] },
      { provide: MESH_FETCH, useFactory: (s: MeshState) => s.fetch, inject: [MESH_STATE] },
    ],
    exports: [MESH, MESH_FETCH],
  };
}

// The decorators, applied as functions (see the file comment).
Inject(MESH_STATE)(MeshModule, undefined, 0);
Module({})(MeshModule);
