/**
 * The route template of an Express request (`/users/:id`), for `http.route` and the inbound
 * stats, never the concrete path: request data must not become a metric attribute or a stats key.
 *
 * Express knows the matched route (`req.route.path`) after routing, but under a mounted router
 * `req.baseUrl` holds the concrete mount prefix (`/orgs/42/users` for `app.use('/orgs/:org/users',
 * r)`). So the first time a route is seen under a mount, the app's router tree is walked once to
 * find the mounts leading to it, and their templates are taken from Express 5's `layer.rawPath`,
 * or rebuilt for Express 4 from each layer's compiled regexp and parameter names; a sub-app adds
 * its `mountpath`. The result is cached per route object. Where this cannot tell (a router mounted
 * in two places, a RegExp or wildcard mount, an optional mount parameter left out), the concrete
 * prefix is used, at most {@link MAX_PREFIXES} of them per route, and later ones fold into
 * `/(other)`.
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
    const prefix = mountTemplate(req.app, route, base);
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
  /** Express 5 (router 2.3+): the path as written. */
  rawPath?: unknown;
  /** Express 4: the compiled path and its parameters. */
  regexp?: unknown;
  keys?: unknown;
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
 * chain of mounts; otherwise undefined. Express 5 layers keep the mount path as written; an
 * Express 4 layer keeps only its compiled regexp, so its piece is rebuilt from the concrete
 * prefix `base` (each captured parameter replaced by `:name`). A sub-app (`app.use('/x',
 * subApp)`) is walked from itself, then prefixed with its `mountpath` up to the top app.
 */
function mountTemplate(app: unknown, route: object, base: string): string | undefined {
  if (app === null || (typeof app !== 'function' && typeof app !== 'object')) return undefined;
  // Express 5 creates `app.router` lazily on first read; a routed request means it exists.
  const a = app as AppLike;
  const root = a._router ?? a.router;
  if (root === undefined || root === null || !Array.isArray(root.stack)) return undefined;
  let chain: Layer[] | undefined;
  let hits = 0;
  let visited = 0;
  const path: Layer[] = [];
  const walk = (stack: readonly Layer[], depth: number): void => {
    for (const layer of stack) {
      if (++visited > MAX_LAYERS || hits > 1) return;
      if (layer === null || typeof layer !== 'object') continue;
      if (layer.route === route) {
        hits++;
        chain = path.slice();
        continue;
      }
      const sub = layer.handle?.stack;
      if (!Array.isArray(sub) || depth >= MAX_DEPTH) continue;
      path.push(layer);
      walk(sub as Layer[], depth + 1);
      path.pop();
    }
  };
  walk(root.stack as Layer[], 0);
  if (hits !== 1 || chain === undefined || visited > MAX_LAYERS) return undefined;
  // The sub-apps' mount paths come first in `base`.
  let outer = '';
  let sub: AppLike = a;
  for (let depth = 0; sub.parent !== undefined && sub.parent !== null; depth++) {
    if (typeof sub.mountpath !== 'string' || depth >= MAX_DEPTH) return undefined;
    outer = join(sub.mountpath === '/' ? '' : sub.mountpath, outer === '' ? '/' : outer);
    sub = sub.parent as AppLike;
  }
  let rest = skipSegments(base, segments(outer));
  let inner = '';
  for (const layer of chain as Layer[]) {
    if (typeof layer.rawPath === 'string') {
      inner = join(inner, layer.rawPath);
      continue;
    }
    const piece = regexpPiece(layer, rest);
    if (piece === undefined) return undefined;
    inner = join(inner, piece.template);
    rest = rest.slice(piece.consumed);
  }
  return join(outer, inner === '' ? '/' : inner);
}

/** `path` without its first `n` segments. */
function skipSegments(path: string, n: number): string {
  let i = 0;
  for (let seen = 0; seen < n && i < path.length;) {
    i++; // the slash
    while (i < path.length && path.charCodeAt(i) !== 47) i++;
    seen++;
  }
  return path.slice(i);
}

/**
 * An Express 4 mount layer's piece of the template, rebuilt from the concrete prefix it matched:
 * `/orgs/42` through `/^\/orgs(?:\/([^/]+?))\/?(?=\/|$)/i` with key `org` gives `/orgs/:org`.
 */
function regexpPiece(layer: Layer, rest: string): { template: string; consumed: number } | undefined {
  const re = layer.regexp;
  const keys = layer.keys;
  if (!(re instanceof RegExp) || !Array.isArray(keys)) return undefined;
  if ((re as RegExp & { fast_slash?: boolean }).fast_slash === true) return { template: '', consumed: 0 };
  let m: RegExpExecArray | null;
  try {
    m = new RegExp(re.source, re.flags.replace(/[gyd]/g, '') + 'd').exec(rest);
  } catch {
    return undefined;
  }
  if (m === null || m.index !== 0 || m.indices === undefined) return undefined;
  let matched = m[0];
  if (matched.endsWith('/')) matched = matched.slice(0, -1);
  let template = '';
  let at = 0;
  for (let i = 1; i < m.length; i++) {
    const span = m.indices[i];
    const key = keys[i - 1] as { name?: unknown; optional?: unknown } | undefined;
    // An optional parameter this request left out: its place in the template is unknown.
    if (span === undefined) return undefined;
    if (key === undefined || (typeof key.name !== 'string' && typeof key.name !== 'number')) return undefined;
    const [from, to] = span;
    if (from < at || to > matched.length) return undefined;
    template += matched.slice(at, from) + ':' + String(key.name) + (key.optional === true ? '?' : '');
    at = to;
  }
  template += matched.slice(at);
  return { template, consumed: matched.length };
}
