/**
 * The v1 protocol's protobufjs types, loaded once (lazily, on first use) from the package's own
 * `proto/` directory. The directory is found from this module's URL, so the same code works from
 * `src/` (tests), `dist/` and an installed tarball: all three sit two levels below the package root.
 * `google/protobuf/{any,struct}.proto` are protobufjs's bundled common types.
 */
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** Absolute path of the package's `proto/` directory. */
export const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));
/** Absolute path of `meshlet/v1/discovery.proto`. */
export const DISCOVERY_PROTO = fileURLToPath(new URL('../../proto/meshlet/v1/discovery.proto', import.meta.url));

export interface ProtocolTypes {
  root: protobuf.Root;
  DiscoveryRequest: protobuf.Type;
  DiscoveryResponse: protobuf.Type;
  EndpointSet: protobuf.Type;
  Endpoint: protobuf.Type;
  Registration: protobuf.Type;
}

let types: ProtocolTypes | undefined;
let loading: Promise<ProtocolTypes> | undefined;

function typesOf(root: protobuf.Root): ProtocolTypes {
  root.resolveAll();
  return {
    root,
    DiscoveryRequest: root.lookupType('meshlet.v1.DiscoveryRequest'),
    DiscoveryResponse: root.lookupType('meshlet.v1.DiscoveryResponse'),
    EndpointSet: root.lookupType('meshlet.v1.EndpointSet'),
    Endpoint: root.lookupType('meshlet.v1.Endpoint'),
    Registration: root.lookupType('meshlet.v1.Registration'),
  };
}

/**
 * The loaded types. If `loadProtocolTypes()` has not finished yet, the first call reads the
 * .proto file synchronously (a few KB, once per process): fine at start-up and in tools; a
 * long-running process should await `loadProtocolTypes()` first (the control-plane client does).
 */
export function protocolTypes(): ProtocolTypes {
  if (types === undefined) {
    const root = new protobuf.Root();
    root.loadSync(DISCOVERY_PROTO);
    types = typesOf(root);
  }
  return types;
}

/** Loads the types with asynchronous file reads (once; later calls share the result). */
export function loadProtocolTypes(): Promise<ProtocolTypes> {
  if (types !== undefined) return Promise.resolve(types);
  loading ??= new protobuf.Root()
    .load(DISCOVERY_PROTO)
    .then((root) => {
      types ??= typesOf(root);
      return types;
    })
    .catch((err: unknown) => {
      loading = undefined; // let a later call try again
      throw err;
    });
  return loading;
}
