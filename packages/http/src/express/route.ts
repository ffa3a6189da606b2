/**
 * The route template of an Express request (`/users/:id`), for `http.route` and the inbound
 * stats, never the concrete path: request data must not become a metric attribute or a stats key.
 *
 * Express knows the matched route (`req.route.path`) after routing, but under a mounted router
 * `req.baseUrl` holds the concrete mount prefix (`/orgs/42/users` for `app.use('/orgs/:org/users',
 * r)`). So the first time a route is seen under a mount, the app's router tree is walked once to
 * find the templates of the mounts leading to it (Express 5's router keeps them as `rawPath`;
 * a sub-app adds its `mountpath`); the result is cached per route object. Where the walk cannot
 * tell (Express 4, whose layers keep no path string; a router mounted in two places; a wildcard
 * mount; a sub-app mounted inside a router), the concrete prefix is used, at most
 * {@link MAX_PREFIXES} of them per route, and later ones fold into `/(other)`.
 */

/** Route of a request no route matched (what `@meshlet/core` reports as `(unmatched)`). */
export const UNMATCHED = '(unmatched)';
/** Concrete mount prefixes kept per route before they fold into {@link OTHER_PREFIX}. */
export const MAX_PREFIXES = 16;
export const OTHER_PREFIX = '/(other)';
/** Bounds of the one-off walk over the app's router tree. */
const MAX_DEPTH = 16;
const MAX_LAYERS = 10_000;

/** What the adapter reads of an Express request (Express 4 and 5 alike). */
export interface ExpressLikeRequest {
  route?: unknown;
  baseUrl?: unknown;
  app?: unknown;
}

class RouteTemplates {
  /** The route's own path as a string. */
  readonly own: string;
  /** Full template from the app's router tree; undefined when the walk could not tell. */
  resolved: string | undefined;
  walked = false;
  /** Concrete prefix → template, when the walk could not tell. */
  byPrefix: Map<string, string> | undefined;
  /** The template for prefixes beyond {@link MAX_PREFIXES}. */
  folded: string | undefined;
  constructor(own: string) {
    this.own = own;
  }
}

const cache = new WeakMap<object, RouteTemplates>();

/** The route template of `req` once Express has routed it, or {@link UNMATCHED}. */
export function routeTemplate(req: ExpressLikeRequest): string {
  const route = req.route;
  if (route === null || typeof route !== 'object') return UNMATCHED;
  let t = cache.get(route);
  if (t === undefined) {
    t = new RouteTemplates(pathString((route as { path?: unknown }).path));
    cache.set(route, t);
  }
  const base = req.baseUrl;
  if (typeof base !== 'string' || base === '' || base === '/') return t.own;
  if (!t.walked) {
    t.walked = true;
    const prefix = mountTemplate(req.app, route);
    // The template must have as many segments as the concrete prefix it stands for; anything
    // else (a wildcard mount, a sub-app under a router) is not trusted.
    if (prefix !== undefined && segments(prefix) === segments(base)) t.resolved = join(prefix, t.own);
  }
  if (t.resolved !== undefined) return t.resolved;
  let m = t.byPrefix;
  if (m === undefined) m = t.byPrefix = new Map();
  let s = m.get(base);
  if (s === undefined) {
    if (m.size < MAX_PREFIXES) m.set(base, (s = join(base, t.own)));
    else s = t.folded ??= join(OTHER_PREFIX, t.own);
  }
  return s;
}

function join(prefix: string, path: string): string {
  if (path === '/' || path === '') return prefix;
  if (prefix.endsWith('/') && path.startsWith('/')) return prefix + path.slice(1);
  return prefix + path;
}

/** A route or mount path as written in the app: a string, a RegExp, or a list of them. */
export function pathString(p: unknown): string {
  if (typeof p === 'string') return p;
  if (p instanceof RegExp) return p.toString();
  if (Array.isArray(p)) return p.map(pathString).join(',');
  return UNMATCHED;
}

interface Layer {
  route?: unknown;
  handle?: { stack?: unknown };
  rawPath?: unknown;
}

/** Number of non-empty path segments. */
function segments(path: string): number {
  let n = 0;
  for (let i = 0; i < path.length; i++) {
    if (path.charCodeAt(i) !== 47 /* / */ && (i === 0 || path.charCodeAt(i - 1) === 47)) n++;
  }
  return n;
}

interface AppLike {
  router?: { stack?: unknown };
  _router?: { stack?: unknown };
  mountpath?: unknown;
  parent?: unknown;
}

/**
 * The template of the mounts leading to `route` (`/orgs/:org`), when it sits under exactly one
 * chain of mounts whose paths are all known; otherwise undefined. A sub-app (`app.use('/x',
 * subApp)`) is walked from itself, then prefixed with its `mountpath` up to the top app.
 */
function mountTemplate(app: unknown, route: object): string | undefined {
  if (app === null || (typeof app !== 'function' && typeof app !== 'object')) return undefined;
  // Express 5 creates `app.router` lazily on first read; a routed request means it exists.
  const a = app as AppLike;
  const root = a._router ?? a.router;
  if (root === undefined || root === null || !Array.isArray(root.stack)) return undefined;
  let found: string | undefined;
  let hits = 0;
  let visited = 0;
  const walk = (stack: readonly Layer[], prefix: string | undefined, depth: number): void => {
    for (const layer of stack) {
      if (++visited > MAX_LAYERS || hits > 1) return;
      if (layer === null || typeof layer !== 'object') continue;
      if (layer.route === route) {
        hits++;
        found = prefix;
        continue;
      }
      const sub = layer.handle?.stack;
      if (!Array.isArray(sub) || depth >= MAX_DEPTH) continue;
      const mount = layer.rawPath;
      // Unknown mount path (Express 4, a RegExp or a list): anything under it cannot be resolved.
      const next = prefix === undefined || typeof mount !== 'string' ? undefined : join(prefix, mount);
      walk(sub as Layer[], next, depth + 1);
    }
  };
  walk(root.stack as Layer[], '', 0);
  if (hits !== 1 || found === undefined || visited > MAX_LAYERS) return undefined;
  let prefix = found;
  let sub: AppLike = a;
  for (let depth = 0; sub.parent !== undefined && sub.parent !== null; depth++) {
    if (typeof sub.mountpath !== 'string' || depth >= MAX_DEPTH) return undefined;
    prefix = join(sub.mountpath === '/' ? '' : sub.mountpath, prefix === '' ? '/' : prefix);
    sub = sub.parent as AppLike;
  }
  return prefix;
}
