/**
 * The one place that decides whether a URL or an origin names a mesh service. Both
 * `createMeshFetch` (from the URL the caller passed) and `createMeshDispatcher` (from the
 * `origin` undici or a raw `dispatch` hands it) ask `MeshUrlResolver.resolve`, so a URL has
 * one meaning whichever API carries it.
 *
 * Rules (the WHATWG URL parser decides what a URL says, so every spelling it reads as
 * `http://<service>/…` goes through the mesh: `HTTP://USERS/`, `http://%75sers/`,
 * `http:\\users\`, surrounding whitespace, `#frag`, `http://users:80/`, userinfo):
 * - scheme `http:` and a host that is a configured service: through the mesh. One trailing
 *   dot is the absolute DNS form of the same name (`http://users./` is `users`). Userinfo
 *   is ignored, as undici ignores it (fetch itself refuses URLs with credentials).
 * - an explicit port other than 80 (`http://users:8080/`): refused with
 *   `MESHLET_ERR_INVALID_REQUEST`; a service's endpoints carry their own ports.
 * - `https:` and a configured service: refused with `MESHLET_ERR_UNSUPPORTED` (TLS to
 *   endpoints is planned), never sent to DNS.
 * - any other host: passed through to plain undici, or, with `unknownHosts: 'reject'`,
 *   refused with `MESHLET_ERR_UNKNOWN_SERVICE` naming close service names.
 * - before a mesh with discovery sources has its first config, an `http:`/`https:` host that
 *   could be a service name (`mesh.mayBeService`) is neither: the verdict is a
 *   `PendingVerdict`, and the caller waits for the config (`mesh.waitReady`, bounded by the
 *   mesh's `startupTimeoutMs`, failing with `MESHLET_ERR_NOT_READY`) and asks again, so no
 *   name leaks to DNS while the mesh does not know yet whether it is a service.
 *
 * Hot path: the canonical origin `http://<service>` (what undici.request and fetch hand a
 * dispatcher) is one Map lookup plus `mesh.hasService`; other canonical origins (lower-case
 * `scheme://host[:port]`) are recognised by a character scan; only unusual spellings pay a
 * URL parse.
 */
import { InvalidRequestError, UnknownServiceError, UnsupportedError, type Mesh, type MeshError } from '@meshlet/core';

/** What to do with a host that is not a configured service. */
export type UnknownHosts = 'passthrough' | 'reject';

/** Not decidable yet: the mesh has no config so far and `host` may be one of its services. */
export class PendingVerdict {
  constructor(readonly host: string) {}
}

/**
 * The verdict on one URL or origin: the service name (through the mesh), a `MeshError` to
 * fail the request with, a `PendingVerdict` (wait for the mesh's first config, then ask
 * again), or undefined (not a mesh URL: pass it through untouched).
 */
export type UrlVerdict = string | MeshError | PendingVerdict | undefined;

/** Canonical origins remembered; past this the Map is cleared (service names only, so it rarely fills). */
const CANONICAL_LIMIT = 1024;

export class MeshUrlResolver {
  /** `http://<service>` → `<service>` for services seen; entries are rechecked with `hasService`. */
  private readonly canonical = new Map<string, string>();

  constructor(
    private readonly mesh: Mesh,
    private readonly unknownHosts: UnknownHosts,
  ) {}

  /**
   * The verdict on an origin as a dispatcher receives it (`http://users`, `HTTP://USERS:80`,
   * a URL object, …). Anything that is neither a string nor a URL passes through.
   */
  resolve(origin: unknown): UrlVerdict {
    if (typeof origin === 'string') {
      const hit = this.canonical.get(origin);
      if (hit !== undefined && this.mesh.hasService(hit)) return hit;
      return this.resolveString(origin, origin.length);
    }
    if (origin instanceof URL) return this.verdict(origin.protocol, origin.hostname, origin.port, undefined);
    return this.unknownHosts === 'reject' && origin != null
      ? this.verdict('', String(origin), '', undefined)
      : undefined;
  }

  /** The verdict on a full URL as fetch receives it (string, URL, or a Request's `url`). */
  resolveUrl(url: string | URL): UrlVerdict {
    if (typeof url !== 'string') return this.verdict(url.protocol, url.hostname, url.port, undefined);
    // The origin part ends at the first '/', '?' or '#' after the scheme's "//".
    let end = url.length;
    const from = url.startsWith('http://') ? 7 : url.startsWith('https://') ? 8 : -1;
    if (from !== -1) {
      for (let i = from; i < url.length; i++) {
        const c = url.charCodeAt(i);
        if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) {
          end = i;
          break;
        }
      }
      if (end === url.length) return this.resolve(url);
      const origin = url.slice(0, end);
      const hit = this.canonical.get(origin);
      if (hit !== undefined && this.mesh.hasService(hit)) return hit;
      return this.resolveString(url, end);
    }
    return this.resolveString(url, url.length);
  }

  /** Scans `s[0, end)` as a canonical origin; falls back to the URL parser for anything else. */
  private resolveString(s: string, end: number): UrlVerdict {
    const from = s.startsWith('http://') ? 7 : s.startsWith('https://') ? 8 : -1;
    if (from !== -1) {
      let colon = -1;
      let ok = end > from;
      for (let i = from; i < end; i++) {
        const c = s.charCodeAt(i);
        if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 /* - */ || c === 46 /* . */) continue;
        if (c === 58 /* : */ && colon === -1 && i > from) {
          colon = i;
          continue;
        }
        ok = false;
        break;
      }
      // A canonical origin has no empty port and no port with a leading zero or letters.
      if (ok && colon !== -1) {
        for (let i = colon + 1; i < end; i++) {
          const c = s.charCodeAt(i);
          if (c < 48 || c > 57) ok = false;
        }
        if (colon + 1 === end || s.charCodeAt(colon + 1) === 48) ok = false;
      }
      if (ok) {
        const host = s.slice(from, colon === -1 ? end : colon);
        const port = colon === -1 ? '' : s.slice(colon + 1, end);
        const protocol = from === 7 ? 'http:' : 'https:';
        // The default port is no port at all (WHATWG drops it).
        const p = port === (from === 7 ? '80' : '443') ? '' : port;
        return this.verdict(protocol, host, p, colon === -1 && end === s.length ? s : undefined);
      }
    }
    let url: URL;
    try {
      url = new URL(s);
    } catch {
      // Not a URL at all: undici will say why; in strict mode nothing unrecognised leaves.
      return this.unknownHosts === 'reject' ? this.verdict('', s.trim(), '', undefined) : undefined;
    }
    return this.verdict(url.protocol, url.hostname, url.port, undefined);
  }

  /**
   * The decision itself, over the parsed parts. `canonical` is the origin string when it is
   * exactly `http://<host>`, so a hit can be remembered for the Map fast path.
   */
  private verdict(protocol: string, hostname: string, port: string, canonical: string | undefined): UrlVerdict {
    // One trailing dot is the absolute form of the same DNS name.
    const host = hostname.length > 1 && hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
    const isHttp = protocol === 'http:';
    if ((isHttp || protocol === 'https:') && this.mesh.hasService(host)) {
      if (!isHttp) {
        return new UnsupportedError(
          host,
          `https:// is not supported for mesh services yet: the mesh speaks plain HTTP to the service's endpoints ` +
            `(TLS to endpoints is planned); call http://${host}/… instead`,
        );
      }
      if (port !== '') {
        return new InvalidRequestError(
          host,
          `the URL names port ${port}, but a mesh service's endpoints carry their own ports (services["${host}"].endpoints); ` +
            `drop ":${port}" and call http://${host}/…`,
        );
      }
      if (canonical !== undefined && protocol === 'http:' && host === hostname) {
        if (this.canonical.size >= CANONICAL_LIMIT) this.canonical.clear();
        this.canonical.set(canonical, host);
      }
      return host;
    }
    if ((isHttp || protocol === 'https:') && this.mesh.mayBeService(host)) return new PendingVerdict(host);
    if (this.unknownHosts === 'passthrough') return undefined;
    return new UnknownServiceError(
      host || hostname || '(none)',
      this.mesh.serviceNames(),
      `unknownHosts is "reject": only configured mesh services may be called through this client`,
    );
  }
}
