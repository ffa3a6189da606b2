/**
 * `installGrpcZeroCode(mesh)`: meshes every grpc-js client and server of the process with no
 * change to the application's code — what `meshlet/register` does for gRPC, as it reroutes the
 * global `fetch` for HTTP. grpc-js has no global client or server hook, so this patches two of
 * its internals, in the copy of `@grpc/grpc-js` this package itself resolves (the one whose
 * `Metadata`, credentials and status objects meshlet's gRPC code is built against):
 *
 * - **Clients.** `Client`'s constructor (`build/src/client.js`, grpc-js 1.12 to 1.14) makes its
 *   channel with `new channel_1.ChannelImplementation(address, credentials, options)`: a live
 *   read of `build/src/channel.js`'s exports object, done per client unless the options carry
 *   `channelOverride` or `channelFactoryOverride`. `ChannelImplementation` on that object is
 *   replaced by a subclass whose constructor returns the mesh's channel (the same factory
 *   `meshGrpcOptions(mesh)` hands out) for a `meshlet:` target, and is the original class for
 *   every other target. So generated clients (`makeGenericClientConstructor`, proto-loader's
 *   `loadPackageDefinition`) and `new grpc.Client(...)` join the mesh, from CommonJS and ESM
 *   alike; a client built with `meshGrpcOptions` never reaches the patch (no double meshing).
 *   grpc-js has no package `exports` map, so the deep `require` of `channel.js` is allowed.
 *   Not reached: `new grpc.Channel('meshlet:///…')` in an ESM application (its namespace holds
 *   the class as it was when grpc-js was first imported), nor a second copy of grpc-js.
 * - **Servers.** A server reads `this.interceptors` on every call (`[...credentials'
 *   interceptors, ...this.interceptors]`), so the patch prepends `meshServerInterceptors(mesh)`
 *   to it once per server, when the server starts serving: `bindAsync`, `createConnectionInjector`
 *   and (grpc-js 1.13 and later) `experimentalCreateConnectionInjectorWithChannelzRef` are
 *   wrapped on `Server.prototype`, the only ways a grpc-js server gets a listener. The prototype,
 *   not the exported class: an ESM application's `import * as grpc` keeps the class it first saw,
 *   which is the same class object whose prototype is patched. A server that already has
 *   meshlet's interceptors (`meshServerInterceptors` of any mesh, tagged with
 *   `MESHLET_SERVER_INTERCEPTOR`) is left as it is.
 *
 * Nothing happens at import time. One mesh per process (per thread: each worker has its own
 * module registry, so its own grpc-js to patch): a second install while one is in place is a
 * `GrpcZeroCodeError`. `uninstall()` puts grpc-js back as it was; servers already serving keep
 * the interceptors they were given.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { ChannelCredentials, ChannelInterface, ChannelOptions, ServerInterceptor } from '@grpc/grpc-js';
import { MeshError, type Mesh } from '@meshlet/core';
import { meshGrpcOptions } from './client/options.js';
import { isMeshletTarget } from './client/target.js';
import { MESHLET_SERVER_INTERCEPTOR, meshServerInterceptors } from './server/interceptors.js';

/** The zero-code gRPC patch could not be installed (already installed, or grpc-js is not as expected). */
export class GrpcZeroCodeError extends MeshError {
  constructor(message: string) {
    super('MESHLET_ERR_GRPC_ZERO_CODE', message);
  }
}

/** What `installGrpcZeroCode` patched; `uninstall()` puts it back. */
export interface GrpcZeroCode {
  /** The mesh every client and server is meshed with. */
  readonly mesh: Mesh;
  /** The directory of the `@grpc/grpc-js` copy that was patched. */
  readonly grpcJsPath: string;
  /** Its version. */
  readonly grpcJsVersion: string;
  /** Restores grpc-js (what is still this install's); servers already serving keep their interceptors. Idempotent. */
  uninstall(): void;
}

type ChannelClass = new (target: string, credentials: ChannelCredentials, options: ChannelOptions) => object;
type ChannelFactory = (target: string, credentials: ChannelCredentials, options: ChannelOptions) => ChannelInterface;
/** A grpc-js server as the patch sees it: its interceptor list (`private` in grpc-js's types). */
type ServerInternals = { interceptors?: unknown };
type AnyMethod = (this: ServerInternals, ...args: unknown[]) => unknown;

/** The `Server.prototype` methods through which a server starts serving (absent ones are skipped). */
const SERVING_METHODS = [
  'bindAsync',
  'createConnectionInjector',
  'experimentalCreateConnectionInjectorWithChannelzRef',
] as const;

const CHANNEL_MODULE = '@grpc/grpc-js/build/src/channel.js';

let installed: GrpcZeroCode | undefined;

/**
 * The directory of the `@grpc/grpc-js` this package resolves (the copy `installGrpcZeroCode`
 * patches), or undefined when none is installed where this package can see it.
 */
export function grpcJsLocation(): string | undefined {
  try {
    return dirname(createRequire(import.meta.url).resolve('@grpc/grpc-js/package.json'));
  } catch {
    return undefined;
  }
}

/**
 * Meshes every grpc-js client (`meshlet:///<service>` targets) and server of this thread with
 * `mesh`, with no change to the application's code (see this module's comment for what is
 * patched). Throws `GrpcZeroCodeError` when an install is already in place (call its
 * `uninstall()` first) or when grpc-js is not shaped as expected, `MeshConfigError` for an
 * argument that is not a Mesh.
 */
export function installGrpcZeroCode(mesh: Mesh): GrpcZeroCode {
  if (installed !== undefined) {
    throw new GrpcZeroCodeError(
      `grpc-js is already meshed with ${installed.mesh === mesh ? 'this' : 'another'} mesh (installGrpcZeroCode, ` +
        'which meshlet/register calls): one process-wide grpc-js takes one mesh. Call uninstall() on the first ' +
        'handle before installing again, or pass meshGrpcOptions(mesh) / meshServerInterceptors(mesh) to the ' +
        "clients and servers of a second mesh (set MESHLET_GRPC=off to keep meshlet/register's hands off grpc-js)",
    );
  }
  // Both validate `mesh` (MeshConfigError), before anything is patched.
  const factory = meshGrpcOptions(mesh).channelFactoryOverride as ChannelFactory;
  const interceptors = meshServerInterceptors(mesh);

  const grpcJsPath = grpcJsLocation();
  if (grpcJsPath === undefined) {
    throw new GrpcZeroCodeError(
      '@grpc/grpc-js cannot be resolved from @meshlet/grpc: install it (npm install @grpc/grpc-js) to mesh gRPC clients and servers',
    );
  }
  const require = createRequire(import.meta.url);
  const grpcJsVersion = String((require('@grpc/grpc-js/package.json') as { version?: unknown }).version);
  const grpc = require('@grpc/grpc-js') as { Channel?: unknown; Server?: { prototype?: object } };
  const channelModule = require(CHANNEL_MODULE) as Record<string, unknown>;
  const Original = channelModule.ChannelImplementation as ChannelClass | undefined;
  const channelSlot = Object.getOwnPropertyDescriptor(channelModule, 'ChannelImplementation');
  const serverProto = grpc.Server?.prototype as Record<string, unknown> | undefined;
  if (
    typeof Original !== 'function' ||
    grpc.Channel !== Original ||
    channelSlot?.writable !== true ||
    serverProto === undefined ||
    typeof serverProto.bindAsync !== 'function'
  ) {
    throw new GrpcZeroCodeError(
      `@grpc/grpc-js ${grpcJsVersion} at ${grpcJsPath} is not shaped as meshlet expects (ChannelImplementation in ` +
        `build/src/channel.js, Server.prototype.bindAsync): pass meshGrpcOptions(mesh) to clients and ` +
        'meshServerInterceptors(mesh) to servers instead (MESHLET_GRPC=off), and report the grpc-js version',
    );
  }

  const Meshed = meshedChannelClass(Original, factory);
  channelModule.ChannelImplementation = Meshed;

  const serverPatches: Array<{ name: string; original: PropertyDescriptor; wrapper: AnyMethod }> = [];
  for (const name of SERVING_METHODS) {
    const original = Object.getOwnPropertyDescriptor(serverProto, name);
    if (original === undefined || typeof original.value !== 'function') continue;
    const serve = original.value as AnyMethod;
    const wrapper = {
      // The method's own name, so stack traces read as before.
      [name](this: ServerInternals, ...args: unknown[]): unknown {
        addInterceptors(this, interceptors);
        return serve.apply(this, args);
      },
    }[name]!;
    Object.defineProperty(serverProto, name, { ...original, value: wrapper });
    serverPatches.push({ name, original, wrapper });
  }

  const handle: GrpcZeroCode = {
    mesh,
    grpcJsPath,
    grpcJsVersion,
    uninstall() {
      if (installed !== handle) return;
      installed = undefined;
      // Only what is still ours: a later patch of someone else's stays.
      if (channelModule.ChannelImplementation === Meshed) channelModule.ChannelImplementation = Original;
      for (const p of serverPatches) {
        if (Object.getOwnPropertyDescriptor(serverProto, p.name)?.value === p.wrapper) {
          Object.defineProperty(serverProto, p.name, p.original);
        }
      }
    },
  };
  installed = handle;
  return handle;
}

/**
 * `ChannelImplementation` for the mesh: a `meshlet:` target gets the mesh's channel (a class
 * constructor may return another object, and grpc-js's `Client` keeps what `new` gave it), any
 * other target the original grpc-js channel, constructed exactly as before.
 */
function meshedChannelClass(Original: ChannelClass, factory: ChannelFactory): ChannelClass {
  return class ChannelImplementation extends Original {
    constructor(target: string, credentials: ChannelCredentials, options: ChannelOptions) {
      if (typeof target === 'string' && isMeshletTarget(target)) {
        return factory(target, credentials, options) as unknown as ChannelImplementation;
      }
      super(target, credentials, options);
    }
  };
}

/** Prepends the mesh's interceptors to a server's own, unless meshlet's are there already. */
function addInterceptors(server: ServerInternals, mesh: ServerInterceptor[]): void {
  const own = server.interceptors;
  if (!Array.isArray(own)) {
    // grpc-js 1.12 to 1.14 always set it in the constructor; anything else is a grpc-js this was not written for.
    warnUnshaped();
    return;
  }
  for (let i = 0; i < own.length; i++) {
    if ((own[i] as { [MESHLET_SERVER_INTERCEPTOR]?: unknown })?.[MESHLET_SERVER_INTERCEPTOR] === true) return;
  }
  // A new array: the one the application passed in its options stays as it was.
  server.interceptors = [...mesh, ...own];
}

let warned = false;
function warnUnshaped(): void {
  if (warned) return;
  warned = true;
  process.emitWarning(
    'a grpc-js Server has no interceptor list, so meshlet could not add its server interceptors: pass ' +
      'meshServerInterceptors(mesh) in the Server options instead',
    { code: 'MESHLET_GRPC_ZERO_CODE' },
  );
}
