// installGrpcZeroCode on real grpc-js servers and clients on 127.0.0.1: with no mesh option in
// the application's code, a generated client and a plain grpc.Client for a meshlet: target go
// through the mesh (balanced, with the caller header), other targets get grpc-js's own channel;
// servers started after the install (bindAsync, createConnectionInjector) get meshlet's server
// interceptors once, unless they already have meshlet's; uninstall() puts grpc-js back exactly;
// a second install is refused.
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { createMesh, MeshConfigError, MeshError, type InboundStats, type Mesh } from '@meshlet/core';
import {
  GrpcZeroCodeError,
  grpcJsLocation,
  installGrpcZeroCode,
  meshGrpcOptions,
  meshServerInterceptors,
  type GrpcZeroCode,
} from '../src/index.js';

const require = createRequire(import.meta.url);
/** The module whose `ChannelImplementation` grpc-js's Client reads per client. */
const channelModule = require('@grpc/grpc-js/build/src/channel.js') as { ChannelImplementation: unknown };
const SERVING = ['bindAsync', 'createConnectionInjector', 'experimentalCreateConnectionInjectorWithChannelzRef'];
const ROUTE = '/demo.Greeter/SayHello';

const serialize = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const deserialize = (buf: Buffer): unknown => JSON.parse(buf.toString());
const greeter: grpc.ServiceDefinition = {
  sayHello: {
    path: ROUTE,
    requestStream: false,
    responseStream: false,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
  },
};
const Greeter = grpc.makeGenericClientConstructor(greeter, 'Greeter');
type Reply = { from: string; caller: string | null };

/** A greeter answering with its name and the `meshlet-caller` it was sent. */
function greeterServer(name: string, options?: grpc.ServerOptions): grpc.Server {
  const server = new grpc.Server(options);
  server.addService(greeter, {
    sayHello(call: grpc.ServerUnaryCall<unknown, Reply>, callback: grpc.sendUnaryData<Reply>) {
      const caller = call.metadata.get('meshlet-caller')[0];
      callback(null, { from: name, caller: typeof caller === 'string' ? caller : null });
    },
  });
  return server;
}

function bind(server: grpc.Server): Promise<string> {
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(`127.0.0.1:${port}`),
    ),
  );
}

function sayHello(client: grpc.Client, metadata = new grpc.Metadata()): Promise<Reply> {
  return new Promise((resolve, reject) =>
    (client as unknown as { sayHello: Function }).sayHello({}, metadata, (err: Error | null, res: Reply) =>
      err ? reject(err) : resolve(res),
    ),
  );
}

/** A direct (non-mesh) call to `address`, naming `caller` in the metadata. */
async function callDirect(address: string, caller: string): Promise<Reply> {
  const client = new Greeter(address, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('meshlet-caller', caller);
  try {
    return await sayHello(client, md);
  } finally {
    client.close();
  }
}

function inboundRows(mesh: Mesh): Array<Pick<InboundStats, 'route' | 'caller' | 'requests'>> {
  return mesh
    .stats()
    .inbound.map(({ route, caller, requests }) => ({ route, caller, requests }))
    .sort((a, b) => a.caller.localeCompare(b.caller));
}

/** The descriptors the install touches, to compare before and after. */
function snapshot(): Record<string, PropertyDescriptor | undefined> {
  const out: Record<string, PropertyDescriptor | undefined> = {
    ChannelImplementation: Object.getOwnPropertyDescriptor(channelModule, 'ChannelImplementation'),
  };
  for (const name of SERVING) out[name] = Object.getOwnPropertyDescriptor(grpc.Server.prototype, name);
  return out;
}

describe('installGrpcZeroCode', () => {
  const servers: grpc.Server[] = [];
  const meshes: Mesh[] = [];
  let handle: GrpcZeroCode | undefined;
  let backends: string[] = [];
  const pristine = snapshot();

  before(async () => {
    // Started before any install: plain servers, they only answer.
    for (const name of ['b1', 'b2']) {
      const s = greeterServer(name);
      servers.push(s);
      backends.push(await bind(s));
    }
  });
  afterEach(() => {
    handle?.uninstall();
    handle = undefined;
  });
  after(async () => {
    for (const s of servers) s.forceShutdown();
    await Promise.all(meshes.map((m) => m.close()));
  });

  function mesh(service: string): Mesh {
    const m = createMesh({
      service,
      services: { greeter: { protocol: 'grpc', loadBalancer: 'round-robin', endpoints: backends } },
    });
    meshes.push(m);
    return m;
  }

  it('names the grpc-js copy it patches', () => {
    const m = mesh('web');
    handle = installGrpcZeroCode(m);
    assert.equal(handle.grpcJsPath, grpcJsLocation());
    assert.equal(handle.grpcJsPath, require.resolve('@grpc/grpc-js/package.json').replace(/\/package\.json$/, ''));
    assert.equal(handle.grpcJsVersion, (require('@grpc/grpc-js/package.json') as { version: string }).version);
    assert.equal(handle.mesh, m);
  });

  it('sends calls of generated clients and grpc.Client to meshlet: targets through the mesh; other targets stay plain', async () => {
    const m = mesh('web');
    handle = installGrpcZeroCode(m);

    const generated = new Greeter('meshlet:///greeter', grpc.credentials.createInsecure());
    const from: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await sayHello(generated);
      assert.equal(res.caller, 'web', 'the mesh adds meshlet-caller');
      from.push(res.from);
    }
    assert.deepEqual([...from].sort(), ['b1', 'b1', 'b2', 'b2'], 'round robin over both endpoints');
    assert.notEqual(generated.getChannel().constructor, grpc.Channel, 'a mesh channel, not grpc-js own');
    generated.close();

    const plain = new grpc.Client('meshlet:///greeter', grpc.credentials.createInsecure());
    const res = await new Promise<Reply>((resolve, reject) =>
      plain.makeUnaryRequest(ROUTE, serialize, deserialize as (b: Buffer) => Reply, {}, (err, value) =>
        err ? reject(err) : resolve(value!),
      ),
    );
    assert.equal(res.caller, 'web');
    plain.close();

    const stats = m.stats().services.greeter!;
    assert.equal(stats.requests, 5);
    assert.deepEqual(stats.endpoints.map((e) => e.requests).sort(), [2, 3]);

    // Not a meshlet: target: grpc-js's own channel, nothing of the mesh on the call.
    const direct = new Greeter(backends[0]!, grpc.credentials.createInsecure());
    assert.ok(direct.getChannel() instanceof grpc.Channel);
    assert.deepEqual(await sayHello(direct), { from: 'b1', caller: null });
    direct.close();
    assert.equal(m.stats().services.greeter!.requests, 5, 'the direct call is not the mesh');

    // A client with meshGrpcOptions keeps its own channel factory (the patch is never reached).
    const own = new Greeter('meshlet:///greeter', grpc.credentials.createInsecure(), meshGrpcOptions(m));
    assert.equal((await sayHello(own)).caller, 'web');
    own.close();
    assert.equal(m.stats().services.greeter!.requests, 6, 'one mesh call, not two');
  });

  it('fails a call to an unconfigured service with UNAVAILABLE naming it', async () => {
    handle = installGrpcZeroCode(mesh('web'));
    const client = new Greeter('meshlet:///nope', grpc.credentials.createInsecure());
    const err = await sayHello(client).then(
      () => assert.fail('answered'),
      (e: grpc.ServiceError & { meshletCode?: string }) => e,
    );
    client.close();
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    assert.equal(err.meshletCode, 'MESHLET_ERR_UNKNOWN_SERVICE');
    assert.match(err.details, /"nope"/);
  });

  it("adds meshlet's server interceptors once to servers started after the install, leaving the app's list alone", async () => {
    const m = mesh('srv');
    handle = installGrpcZeroCode(m);

    const plain = greeterServer('plain');
    servers.push(plain);
    const plainAddress = await bind(plain);
    await bind(plain); // a second port: still one interceptor
    await callDirect(plainAddress, 'a');

    const seen: string[] = [];
    const own: grpc.ServerInterceptor = (method, call) => {
      seen.push(method.path);
      return new grpc.ServerInterceptingCall(call);
    };
    const appList = [own];
    const withOwn = greeterServer('with-own', { interceptors: appList });
    servers.push(withOwn);
    await callDirect(await bind(withOwn), 'b');
    assert.deepEqual(seen, [ROUTE], "the application's interceptor still runs");
    assert.deepEqual(appList, [own], "the application's array is not changed");

    // Recorded once per call, with the caller it named.
    assert.deepEqual(inboundRows(m), [
      { route: ROUTE, caller: 'a', requests: 1 },
      { route: ROUTE, caller: 'b', requests: 1 },
    ]);
  });

  it('meshes a server that serves through createConnectionInjector', async () => {
    const m = mesh('srv');
    handle = installGrpcZeroCode(m);
    const server = greeterServer('injected');
    servers.push(server);
    const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    const net = createNetServer((socket) => injector.injectConnection(socket));
    await new Promise<void>((resolve) => net.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = net.address() as AddressInfo;
      assert.equal((await callDirect(`127.0.0.1:${port}`, 'c')).from, 'injected');
      assert.deepEqual(inboundRows(m), [{ route: ROUTE, caller: 'c', requests: 1 }]);
    } finally {
      injector.destroy();
      net.close();
    }
  });

  it("leaves a server that already has meshlet's interceptors (of another mesh) as it is", async () => {
    const m = mesh('srv');
    const other = mesh('other');
    handle = installGrpcZeroCode(m);
    const server = greeterServer('explicit', { interceptors: meshServerInterceptors(other) });
    servers.push(server);
    await callDirect(await bind(server), 'd');
    assert.deepEqual(inboundRows(other), [{ route: ROUTE, caller: 'd', requests: 1 }]);
    assert.deepEqual(inboundRows(m), [], 'no second recording by the installed mesh');
  });

  it('uninstall() puts grpc-js back exactly; servers and clients made afterwards are plain', async () => {
    const m = mesh('srv');
    handle = installGrpcZeroCode(m);
    assert.notDeepEqual(snapshot(), pristine, 'patched while installed');
    handle.uninstall();
    handle.uninstall(); // idempotent
    assert.deepEqual(snapshot(), pristine);
    assert.equal(channelModule.ChannelImplementation, grpc.Channel);

    const server = greeterServer('after');
    servers.push(server);
    await callDirect(await bind(server), 'e');
    assert.deepEqual(inboundRows(m), [], 'no interceptors added after uninstall');

    const client = new Greeter('meshlet:///greeter', grpc.credentials.createInsecure());
    assert.ok(client.getChannel() instanceof grpc.Channel, "grpc-js's own channel again");
    client.close();
    assert.equal(m.stats().services.greeter!.requests, 0);
  });

  it('refuses a second install, for the same mesh or another, until the first is uninstalled', () => {
    const m = mesh('web');
    handle = installGrpcZeroCode(m);
    const patched = snapshot();
    for (const again of [m, mesh('other')]) {
      assert.throws(
        () => installGrpcZeroCode(again),
        (err: unknown) =>
          err instanceof GrpcZeroCodeError &&
          err instanceof MeshError &&
          err.code === 'MESHLET_ERR_GRPC_ZERO_CODE' &&
          /already meshed/.test(err.message) &&
          /uninstall\(\)/.test(err.message),
      );
    }
    assert.deepEqual(snapshot(), patched, 'the refused install changed nothing');
    handle.uninstall();
    handle = installGrpcZeroCode(mesh('other'));
    assert.equal(handle.mesh.service, 'other');
  });

  it('refuses something that is not a Mesh and patches nothing', () => {
    assert.throws(() => installGrpcZeroCode({} as Mesh), MeshConfigError);
    assert.deepEqual(snapshot(), pristine);
  });
});
