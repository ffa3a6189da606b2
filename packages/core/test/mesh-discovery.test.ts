// The mesh side of discovery: sources deliver views, the mesh merges them with the static
// config, waits for the first config before routing names it does not know yet, and hands
// registrations to the source that carries them. Sources here are test doubles; the real
// control-plane client and file source are tested in @meshlet/discovery and end to end.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh, type Mesh, type MeshOptions } from '../src/mesh.js';
import type {
  DiscoverySink,
  DiscoverySnapshot,
  DiscoverySource,
  Registration,
  RegistrationHandle,
} from '../src/discovery/source.js';
import { MeshConfigError, MeshError, NotReadyError } from '../src/errors.js';
import { codeOf, fakeProtocol, get, ok } from './helpers/fake-protocol.js';

class TestSource implements DiscoverySource {
  sink: DiscoverySink | undefined;
  closed = 0;
  registrations: Registration[] = [];
  context: unknown;
  constructor(
    readonly name = 'test source',
    private readonly canRegister = false,
  ) {
    if (canRegister) this.register = this.doRegister;
  }
  start(sink: DiscoverySink, context: unknown): void {
    this.sink = sink;
    this.context = context;
  }
  describe(): string {
    return `${this.name}: ${this.sink ? 'started' : 'not started'}, nothing received`;
  }
  register?: (r: Registration) => Promise<RegistrationHandle>;
  private doRegister = async (r: Registration): Promise<RegistrationHandle> => {
    this.registrations.push(r);
    return {
      registration: r,
      withdraw: async () => {
        this.registrations = this.registrations.filter((x) => x !== r);
      },
    };
  };
  async close(): Promise<void> {
    this.closed++;
  }
  deliver(snapshot: DiscoverySnapshot): void {
    this.sink!.update(snapshot);
  }
}

const meshes: Mesh[] = [];
after(() => Promise.all(meshes.map((m) => m.close({ graceMs: 0 }))));
function make(options: MeshOptions): Mesh {
  const m = createMesh(options);
  meshes.push(m);
  return m;
}

const proto = fakeProtocol(ok);

describe('mesh with discovery sources', () => {
  it('is ready at once without sources, and after every source delivered with them', async () => {
    assert.equal(make({ services: { a: { endpoints: ['a:1'] } } }).isReady, true);
    const s1 = new TestSource('one');
    const s2 = new TestSource('two');
    const mesh = make({ service: 'orders', discovery: [s1, s2] });
    assert.equal(mesh.isReady, false);
    assert.deepEqual(s1.context, { service: 'orders' });
    let resolved = false;
    void mesh.ready().then(() => (resolved = true));
    s1.deliver({ services: { users: { endpoints: ['10.0.0.1:80'] } } });
    await new Promise((r) => setImmediate(r));
    assert.equal(resolved, false, 'one source of two is not ready');
    s2.deliver({ services: {} });
    await mesh.ready();
    assert.equal(mesh.hasService('users'), true);
    assert.deepEqual(
      mesh.discoveryStatus().map((s) => [s.name, s.ready]),
      [
        ['one', true],
        ['two', true],
      ],
    );
  });

  it('merges: static policies, a source without policies adds endpoints, a source with policies overrides them', async () => {
    const eps = new TestSource('endpoints only');
    const policies = new TestSource('policies');
    const mesh = make({
      services: { users: { endpoints: ['10.0.0.1:80'], retry: { maxAttempts: 5 } } },
      discovery: [eps, policies],
    });
    eps.deliver({
      services: { users: { endpoints: ['10.0.0.2:80', '10.0.0.1:80'] }, solo: { endpoints: ['10.0.0.9:80'] } },
    });
    policies.deliver({ services: {} });
    const stats = mesh.stats().services;
    assert.deepEqual(
      stats.users.endpoints.map((e) => e.address),
      ['10.0.0.1:80', '10.0.0.2:80'],
      'endpoints are the union by address',
    );
    // Policies still the static ones: the endpoints-only source does not reset them.
    const cfg = (svc: string) =>
      (mesh as unknown as { services: Map<string, { config: { retry: { maxAttempts: number } } }> }).services.get(svc)!
        .config;
    assert.equal(cfg('users').retry.maxAttempts, 5);
    assert.equal(cfg('solo').retry.maxAttempts, 3, 'a service only given endpoints runs on the defaults');
    policies.deliver({ services: { users: { retry: { maxAttempts: 2 } } } });
    assert.equal(cfg('users').retry.maxAttempts, 2, 'the later source with policies wins');
    assert.equal(mesh.stats().services.users.endpoints.length, 2, 'its view adds no endpoints and removes none');
    // A source's view is state of the world: what it no longer lists goes.
    eps.deliver({ services: {} });
    assert.equal(mesh.hasService('solo'), false);
    assert.deepEqual(
      mesh.stats().services.users.endpoints.map((e) => e.address),
      ['10.0.0.1:80'],
    );
  });

  it('re-applies only the services a push changed (the others keep their config objects)', () => {
    const src = new TestSource();
    const mesh = make({ discovery: [src] });
    const services: Record<string, { endpoints: string[]; retry?: { maxAttempts: number } }> = {};
    for (let i = 0; i < 50; i++) services[`s${i}`] = { endpoints: [`10.0.${i}.1:80`, `10.0.${i}.2:80`] };
    src.deliver({ services });
    const internal = (mesh as unknown as { services: Map<string, { config: unknown }> }).services;
    const before = new Map([...internal].map(([n, s]) => [n, s.config]));
    src.deliver({ services: { ...services, s7: { ...services.s7, retry: { maxAttempts: 2 } } } });
    const changed = [...internal].filter(([n, s]) => before.get(n) !== s.config).map(([n]) => n);
    assert.deepEqual(changed, ['s7']);
  });

  it('refuses an invalid view with a MeshConfigError naming the path, and keeps serving the last good one', async () => {
    const src = new TestSource();
    const mesh = make({ discovery: [src] });
    src.deliver({ services: { users: { endpoints: ['10.0.0.1:80'] } } });
    assert.throws(
      () => src.deliver({ services: { users: { endpoints: ['10.0.0.1:80'], retry: { maxAttempts: -1 } } } }),
      (err: unknown) => err instanceof MeshConfigError && err.path === 'services.users.retry.maxAttempts',
    );
    assert.throws(() => src.deliver(null as never), MeshConfigError);
    assert.throws(() => src.deliver({ services: [] } as never), MeshConfigError);
    assert.equal(mesh.hasService('users'), true);
    assert.equal((await mesh.call('users', get(), proto)).status, 200);
  });

  it('refuses a view that leaves a route of another source dangling', () => {
    const routes = new TestSource('routes');
    const targets = new TestSource('targets');
    const mesh = make({ discovery: [routes, targets] });
    targets.deliver({ services: { v2: { endpoints: ['10.0.0.2:80'] } } });
    routes.deliver({ services: { api: { routes: [{ backends: [{ service: 'v2' }] }] } } });
    assert.throws(
      () => targets.deliver({ services: {} }),
      (err: unknown) => err instanceof MeshConfigError && /api\.routes\[0\]\.backends\[0\]\.service/.test(err.path),
    );
    assert.equal(mesh.hasService('v2'), true);
  });

  it('before the first config, a call to a name that may be a service waits for it, then goes through', async () => {
    const src = new TestSource();
    const mesh = make({ discovery: [src] });
    assert.equal(mesh.mayBeService('users'), true);
    assert.equal(mesh.mayBeService('127.0.0.1'), false);
    assert.equal(mesh.mayBeService('localhost'), false);
    const call = mesh.call('users', get(), proto);
    setTimeout(() => src.deliver({ services: { users: { endpoints: ['10.0.0.1:80'] } } }), 20);
    assert.equal((await call).endpoint, '10.0.0.1:80');
    assert.equal(mesh.mayBeService('users'), false, 'once ready, nothing waits');
    // Once ready, an unknown name fails at once.
    assert.equal(await codeOf(mesh.call('userz', get(), proto)), 'MESHLET_ERR_UNKNOWN_SERVICE');
  });

  it('fails a waiting call with NOT_READY naming the sources after startupTimeoutMs, and honours the abort signal', async () => {
    const src = new TestSource('control plane 127.0.0.1:15010');
    src.sink = undefined;
    const mesh = make({ discovery: [src], startupTimeoutMs: 50 });
    const started = Date.now();
    await assert.rejects(mesh.call('users', get(), proto), (err: unknown) => {
      assert.ok(err instanceof NotReadyError);
      assert.equal(err.code, 'MESHLET_ERR_NOT_READY');
      assert.match(err.message, /control plane 127\.0\.0\.1:15010/);
      assert.match(err.message, /"users"/);
      return true;
    });
    assert.ok(Date.now() - started >= 45);
    const ac = new AbortController();
    const p = mesh.call('users', get(), proto, ac.signal);
    ac.abort(new Error('caller gave up'));
    await assert.rejects(p, /caller gave up/);
    await assert.rejects(mesh.ready({ timeoutMs: 10 }), NotReadyError);
    await assert.rejects(mesh.ready({ timeoutMs: 2 ** 31 }), MeshConfigError);
    await assert.rejects(mesh.ready({ timeoutMs: -1 }), MeshConfigError);
  });

  it('reports a source error in its status and NOT_READY message', async () => {
    const src = new TestSource('cp');
    const mesh = make({ discovery: [src], startupTimeoutMs: 20 });
    src.sink!.error(new Error('connect ECONNREFUSED 127.0.0.1:15010'));
    assert.equal(mesh.discoveryStatus()[0].lastError, 'connect ECONNREFUSED 127.0.0.1:15010');
    await assert.rejects(mesh.ready(), /ECONNREFUSED/);
  });

  it('register: validated, handed to the source that carries registrations, refused without one', async () => {
    const plain = new TestSource('file');
    const cp = new TestSource('cp', true);
    const mesh = make({ discovery: [plain, cp] });
    const handle = await mesh.register({ service: 'users', address: '127.0.0.1:4001', zone: 'a' });
    assert.deepEqual(cp.registrations, [{ service: 'users', address: '127.0.0.1:4001', weight: 1, zone: 'a' }]);
    await handle.withdraw();
    assert.deepEqual(cp.registrations, []);
    await assert.rejects(
      mesh.register({ service: 'users', address: 'no-port' }),
      (err: unknown) => err instanceof MeshConfigError && err.path.startsWith('registration'),
    );
    await assert.rejects(
      mesh.register({ service: 'Bad Name', address: '127.0.0.1:1' }),
      (err: unknown) => err instanceof MeshConfigError && err.path === 'registration.service',
    );
    const noReg = make({ services: {} });
    await assert.rejects(
      noReg.register({ service: 'users', address: '127.0.0.1:4001' }),
      (err: unknown) =>
        err instanceof MeshError && err.code === 'MESHLET_ERR_UNSUPPORTED' && /controlPlane/.test(err.message),
    );
  });

  it('close() closes every source, and a closed mesh ignores late deliveries', async () => {
    const src = new TestSource();
    const mesh = createMesh({ discovery: [src] });
    src.deliver({ services: { users: { endpoints: ['10.0.0.1:80'] } } });
    await mesh.close();
    assert.equal(src.closed, 1);
    src.deliver({ services: {} });
    await assert.rejects(mesh.register({ service: 'users', address: '127.0.0.1:1' }), /closed/);
  });

  it('rejects bad discovery options with their paths', () => {
    assert.throws(
      () => createMesh({ discovery: 'cp' as never }),
      (err: unknown) => err instanceof MeshConfigError && err.path === 'discovery',
    );
    assert.throws(
      () => createMesh({ discovery: [{}] as never }),
      (err: unknown) => err instanceof MeshConfigError && err.path === 'discovery[0]',
    );
    assert.throws(
      () => createMesh({ startupTimeoutMs: 2 ** 31 } as never),
      (err: unknown) => err instanceof MeshConfigError && err.path === 'startupTimeoutMs',
    );
    assert.throws(
      () => createMesh({ services: {}, servce: 'x' } as never),
      (err: unknown) =>
        err instanceof MeshConfigError && err.path === 'servce' && /did you mean "service"/.test(err.message),
    );
  });

  it('takes a dns service endpoints from DNS, is ready after the first answer, and keeps them when DNS fails', async () => {
    let answer: Array<{ address: string; ttl: number }> | Error = [
      { address: '10.1.0.1', ttl: 30 },
      { address: '10.1.0.2', ttl: 30 },
    ];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const resolver = {
      resolve4: async () => {
        await gate;
        if (answer instanceof Error) throw answer;
        return answer;
      },
      resolve6: async () => [],
      resolveSrv: async () => [],
    };
    const mesh = make({
      services: { users: { dns: { name: 'users.internal', port: 8080, type: 'A', refreshMs: 1000 } } } as never,
      dnsResolver: resolver,
    });
    assert.equal(mesh.isReady, false, 'not ready before DNS answered');
    release();
    await mesh.ready({ timeoutMs: 1000 });
    assert.deepEqual(
      mesh.stats().services.users.endpoints.map((e) => e.address),
      ['10.1.0.1:8080', '10.1.0.2:8080'],
    );
    answer = Object.assign(new Error('queryA ESERVFAIL users.internal'), { code: 'ESERVFAIL' });
    // The next refresh (refreshMs 1000) fails: wait for it (a loaded machine can be late for it).
    const until = performance.now() + 10_000;
    while (mesh.dnsStatus()[0].error === undefined && performance.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(mesh.dnsStatus()[0].error ?? '', /users\.internal/);
    assert.equal(mesh.stats().services.users.endpoints.length, 2, 'last good set kept');
  });
});
