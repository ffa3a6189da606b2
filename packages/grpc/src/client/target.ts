/**
 * `meshlet:` targets. A gRPC client addresses a mesh service as `meshlet:///<service>` (the
 * gRPC name syntax, empty authority); `meshlet:<service>` and `meshlet://<authority>/<service>`
 * (authority ignored) are read the same way. The service name follows the config's rules, so a
 * target that names no valid service is refused when the client is built, naming the target.
 */
import { MeshConfigError, isServiceName } from '@meshlet/core';

export const MESHLET_SCHEME = 'meshlet';

/** True when `target` uses the `meshlet:` scheme (any case). */
export function isMeshletTarget(target: string): boolean {
  return target.length > 8 && target.slice(0, 8).toLowerCase() === 'meshlet:';
}

/**
 * The service a `meshlet:` target names. Throws `MeshConfigError` (path `target`) when it names
 * none: the client cannot be built, rather than failing every call later.
 */
export function serviceOfTarget(target: string): string {
  let rest = target.slice(8);
  if (rest.startsWith('//')) {
    const slash = rest.indexOf('/', 2);
    rest = slash === -1 ? '' : rest.slice(slash + 1);
  }
  let name = rest;
  try {
    name = decodeURIComponent(rest);
  } catch {
    // Left as written; the name check below refuses it.
  }
  name = name.toLowerCase();
  if (!isServiceName(name)) {
    throw new MeshConfigError([
      {
        path: 'target',
        message:
          `"${target}" names no valid service: expected meshlet:///<service>, where <service> is a configured ` +
          'service name (lower-case letters, digits, "-" and "."), e.g. meshlet:///users',
      },
    ]);
  }
  return name;
}
