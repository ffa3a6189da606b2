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
  Any: protobuf.Type;
}

let types: ProtocolTypes | undefined;

/** The loaded types. The first call reads the .proto file (a few KB, once per process). */
export function protocolTypes(): ProtocolTypes {
  if (types !== undefined) return types;
  const root = new protobuf.Root();
  root.loadSync(DISCOVERY_PROTO);
  root.resolveAll();
  types = {
    root,
    DiscoveryRequest: root.lookupType('meshlet.v1.DiscoveryRequest'),
    DiscoveryResponse: root.lookupType('meshlet.v1.DiscoveryResponse'),
    EndpointSet: root.lookupType('meshlet.v1.EndpointSet'),
    Endpoint: root.lookupType('meshlet.v1.Endpoint'),
    Registration: root.lookupType('meshlet.v1.Registration'),
    Any: root.lookupType('google.protobuf.Any'),
  };
  return types;
}
