/**
 * Every setup the benchmark compares. A setup is a client module (bench/clients/<client>.ts)
 * plus the path its requests take. Adding a protocol (gRPC) means adding client modules and
 * rows here; the runner, loops, accounting and report stay as they are.
 */

export type Route = 'direct' | 'haproxy-1hop' | 'haproxy-2hop';

export interface SetupDef {
  name: string;
  /** One line for tables and the chart. */
  label: string;
  /** Module under bench/clients/ (without .ts). */
  client: string;
  /**
   * The call the application makes, as written in its code: which API form this row measures
   * (the cost of `undici.request(url, { dispatcher })` and of a mesh `fetch()` differ, and users call both).
   */
  form: string;
  route: Route;
  /** The setup it is reported as a ratio to (same request API, no mesh). */
  baseline: string | undefined;
  /**
   * The setup whose maximum throughput (closed loop, c=64) sets this setup's open-loop rates, and
   * its Δp99 reference. The fetch setups load at fetch's own capacity: at rates set by undici
   * `request` (about three times faster) both would be saturated and compare nothing.
   */
  loadBase: string;
  /** Needs the built @meshlet packages. */
  meshlet: boolean;
}

export const BASELINE = 'undici-request';

export const SETUPS: SetupDef[] = [
  {
    name: 'undici-request',
    label: 'undici request (baseline)',
    client: 'undici-request',
    form: "undici.request('http://127.0.0.1:PORT/', { dispatcher: pool })",
    route: 'direct',
    baseline: undefined,
    loadBase: 'undici-request',
    meshlet: false,
  },
  {
    name: 'undici-fetch',
    label: 'undici fetch',
    client: 'undici-fetch',
    form: "undici.fetch('http://127.0.0.1:PORT/', { dispatcher: pool })",
    route: 'direct',
    baseline: 'undici-request',
    loadBase: 'undici-fetch',
    meshlet: false,
  },
  {
    name: 'meshlet-passthrough',
    label: 'meshlet dispatcher, passthrough',
    client: 'meshlet-passthrough',
    form: "undici.request('http://127.0.0.1:PORT/', { dispatcher: meshDispatcher })",
    route: 'direct',
    baseline: 'undici-request',
    loadBase: 'undici-request',
    meshlet: true,
  },
  {
    name: 'meshlet-balancer',
    label: 'meshlet + balancer',
    client: 'meshlet-balancer',
    form: "undici.request('http://upstream/', { dispatcher: meshDispatcher })",
    route: 'direct',
    baseline: 'undici-request',
    loadBase: 'undici-request',
    meshlet: true,
  },
  {
    name: 'meshlet-policies',
    label: 'meshlet + retry/budget/breaker/outlier',
    client: 'meshlet-policies',
    form: "undici.request('http://upstream/', { dispatcher: meshDispatcher })",
    route: 'direct',
    baseline: 'undici-request',
    loadBase: 'undici-request',
    meshlet: true,
  },
  {
    name: 'meshlet-full',
    label: 'meshlet full (+ OTel SDK)',
    client: 'meshlet-full',
    form: "undici.request('http://upstream/', { dispatcher: meshDispatcher })",
    route: 'direct',
    baseline: 'undici-request',
    loadBase: 'undici-request',
    meshlet: true,
  },
  {
    name: 'meshlet-fetch',
    label: 'meshlet fetch, full (+ OTel SDK)',
    client: 'meshlet-fetch',
    form: "meshFetch('http://upstream/')",
    route: 'direct',
    baseline: 'undici-fetch',
    loadBase: 'undici-fetch',
    meshlet: true,
  },
  {
    name: 'meshlet-fetch-policies',
    label: 'meshlet fetch + retry/budget/breaker/outlier',
    client: 'meshlet-fetch-policies',
    form: "meshFetch('http://upstream/')",
    route: 'direct',
    baseline: 'undici-fetch',
    loadBase: 'undici-fetch',
    meshlet: true,
  },
  // The sidecar setups use the baseline client unchanged: the only difference is the proxy in the path.
  {
    name: 'haproxy-1hop',
    label: 'undici request via HAProxy, 1 hop',
    client: 'undici-request',
    form: "undici.request('http://SIDECAR/', { dispatcher: pool })",
    route: 'haproxy-1hop',
    baseline: 'undici-request',
    loadBase: 'undici-request',
    meshlet: false,
  },
  {
    name: 'haproxy-2hop',
    label: 'undici request via HAProxy, 2 hops',
    client: 'undici-request',
    form: "undici.request('http://SIDECAR/', { dispatcher: pool })",
    route: 'haproxy-2hop',
    baseline: 'undici-request',
    loadBase: 'undici-request',
    meshlet: false,
  },
];

/**
 * Order of measurement inside each load point: the setups the targets compare run right after
 * the baseline, so a drift in the machine's load hurts the comparisons as little as possible.
 */
export const RUN_ORDER = [
  'undici-request',
  'meshlet-policies',
  'meshlet-full',
  'haproxy-1hop',
  'haproxy-2hop',
  'meshlet-balancer',
  'meshlet-passthrough',
  'undici-fetch',
  'meshlet-fetch-policies',
  'meshlet-fetch',
];

/**
 * The user-facing forms with default policies and no OpenTelemetry SDK, each beside raw undici in
 * the same form over the same upstreams, and the goals they are held to (issue 6): throughput at
 * least `minRatio` × raw and, where set, at most `maxAddedCpuUs` more client CPU per request, at
 * every concurrency in `FORM_CONCURRENCY`.
 */
export interface FormGoal {
  /** Short name: `undici.request` or `fetch`. */
  form: string;
  setup: string;
  baseline: string;
  minRatio: number;
  maxAddedCpuUs: number | undefined;
}

export const FORM_GOALS: FormGoal[] = [
  { form: 'undici.request', setup: 'meshlet-policies', baseline: 'undici-request', minRatio: 0.95, maxAddedCpuUs: 2 },
  { form: 'fetch', setup: 'meshlet-fetch-policies', baseline: 'undici-fetch', minRatio: 0.9, maxAddedCpuUs: undefined },
];

/** Closed-loop concurrencies the form goals are checked at. */
export const FORM_CONCURRENCY = [32, 64] as const;
