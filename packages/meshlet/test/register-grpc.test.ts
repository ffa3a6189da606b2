// Zero-code start with gRPC, in real child processes: an app started with
// `node --import meshlet/register` writes `new Client('meshlet:///greeter', creds,
// meshGrpcOptions(mesh))` with the mesh `meshlet/register` built from the environment, and its
// calls reach real grpc-js servers on 127.0.0.1, balanced by the mesh, whether the service comes
// from MESHLET_CONFIG or is pushed (and changed) by a control server. The admin endpoint's /stats
// and /metrics show the gRPC service; a server built with meshServerInterceptors(mesh) fills the
// inbound table per method and caller.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { createControlServer, type ControlServer } from '@meshlet/control';
import { createMesh } from '@meshlet/core';
import { controlPlane } from '@meshlet/discovery';
import { meshGrpcOptions } from '@meshlet/grpc';
import { freePort, runApp, startApp, TempDir, waitFor } from './helpers.ts';

/** Resolved here, so the temp apps need no node_modules of their own. */
const GRPC = JSON.stringify(import.meta.resolve('@grpc/grpc-js'));
const REGISTER = JSON.stringify(import.meta.resolve('../dist/register.js'));
const MESHLET = JSON.stringify(import.meta.resolve('../dist/index.js'));

/** JSON messages, so neither side needs a .proto. */
const serialize = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const deserialize = (buf: Buffer): unknown => JSON.parse(buf.toString());

/** The service definition the app builds too (same text, inside its source). */
const GREETER_DEFINITION = `{
  sayHello: {
    path: '/demo.Greeter/SayHello',
    requestStream: false,
    responseStream: false,
    requestSerialize: (v) => Buffer.from(JSON.stringify(v)),
    requestDeserialize: (b) => JSON.parse(b.toString()),
    responseSerialize: (v) => Buffer.from(JSON.stringify(v)),
    responseDeserialize: (b) => JSON.parse(b.toString()),
  },
}`;

const greeterService: grpc.ServiceDefinition = {
  sayHello: {
    path: '/demo.Greeter/SayHello',
    requestStream: false,
    responseStream: false,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
  },
};

interface Backend {
  name: string;
  address: string;
  server: grpc.Server;
}

/** A grpc-js server on 127.0.0.1 port 0 that answers with its name and the caller it was told. */
async function backend(name: string): Promise<Backend> {
  const server = new grpc.Server();
  server.addService(greeterService, {
    sayHello(
      call: grpc.ServerUnaryCall<{ name: string }, unknown>,
      callback: grpc.sendUnaryData<{ from: string; hello: string; caller: string | undefined }>,
    ) {
      const caller = call.metadata.get('meshlet-caller')[0];
      callback(null, {
        from: name,
        hello: call.request.name,
        caller: typeof caller === 'string' ? caller : undefined,
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { name, address: `127.0.0.1:${port}`, server };
}

function shutdown(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => server.tryShutdown(() => resolve()));
}

/** An app that makes `calls` unary calls to meshlet:///greeter and prints what it saw as JSON. */
function clientApp(calls: number, extra = ''): string {
  return `import * as grpc from ${GRPC};
import { mesh, admin } from ${REGISTER};
import { meshGrpcOptions } from ${MESHLET};
const Greeter = grpc.makeGenericClientConstructor(${GREETER_DEFINITION}, 'Greeter');
const client = new Greeter('meshlet:///greeter', grpc.credentials.createInsecure(), meshGrpcOptions(mesh));
const sayHello = (name) =>
  new Promise((resolve, reject) => client.sayHello({ name }, (err, res) => (err ? reject(err) : resolve(res))));
const counts = {};
const callers = new Set();
for (let i = 0; i < ${calls}; i++) {
  const res = await sayHello('n' + i);
  if (res.hello !== 'n' + i) throw new Error('wrong answer ' + JSON.stringify(res));
  counts[res.from] = (counts[res.from] ?? 0) + 1;
  callers.add(res.caller);
}
const out = { counts, callers: [...callers] };
${extra}
client.close();
console.log(JSON.stringify(out));
`;
}

describe('meshlet/register: gRPC clients through the zero-code mesh', () => {
  let dir: TempDir;
  const backends: Backend[] = [];

  before(async () => {
    dir = await TempDir.create();
    for (const name of ['g1', 'g2', 'g3']) backends.push(await backend(name));
  });
  after(async () => {
    for (const b of backends) await shutdown(b.server);
    await dir.remove();
  });

  it('calls a gRPC service from MESHLET_CONFIG, balanced, with the caller name; /stats and /metrics show it', async () => {
    await dir.write(
      'grpc-mesh.yaml',
      `services:\n  greeter:\n    protocol: grpc\n    loadBalancer: round-robin\n    endpoints:\n` +
        backends
          .slice(0, 2)
          .map((b) => `      - "${b.address}"\n`)
          .join(''),
    );
    await dir.write(
      'grpc-client.mjs',
      clientApp(
        20,
        `const unknown = new Greeter('meshlet:///nope', grpc.credentials.createInsecure(), meshGrpcOptions(mesh));
await new Promise((resolve) =>
  unknown.sayHello({ name: 'x' }, (err) => {
    out.unknown = err ? { code: err.code, details: err.details, meshletCode: err.meshletCode } : 'answered';
    resolve();
  }),
);
unknown.close();
const { port } = (await admin).address;
out.stats = await (await fetch('http://127.0.0.1:' + port + '/stats')).json();
const metrics = await (await fetch('http://127.0.0.1:' + port + '/metrics')).text();
out.histogram = metrics.includes('# TYPE rpc_client_call_duration histogram');
out.countLine = metrics.split('\\n').find((l) => l.startsWith('rpc_client_call_duration_count{')) ?? null;`,
      ),
    );
    const { code, stdout, stderr } = await runApp(dir.path, 'grpc-client.mjs', {
      MESHLET_SERVICE: 'web',
      MESHLET_CONFIG: 'grpc-mesh.yaml',
      MESHLET_ADMIN_PORT: '0',
    });
    assert.equal(code, 0, `the app ran and exited by itself; stderr: ${stderr}`);
    const out = JSON.parse(stdout) as {
      counts: Record<string, number>;
      callers: string[];
      unknown: { code: number; details: string; meshletCode: string } | 'answered';
      stats: {
        services: Record<
          string,
          { requests: number; successes: number; endpoints: Array<{ address: string; requests: number }> }
        >;
      };
      histogram: boolean;
      countLine: string | null;
    };
    assert.deepEqual(out.counts, { g1: 10, g2: 10 }, 'round robin over the two configured endpoints');
    assert.deepEqual(out.callers, ['web'], 'meshlet-caller is MESHLET_SERVICE');

    assert.notEqual(out.unknown, 'answered');
    if (out.unknown === 'answered') return;
    assert.equal(out.unknown.code, grpc.status.UNAVAILABLE);
    assert.equal(out.unknown.meshletCode, 'MESHLET_ERR_UNKNOWN_SERVICE');
    assert.match(out.unknown.details, /^MESHLET_ERR_UNKNOWN_SERVICE: .*"nope"/);

    const greeter = out.stats.services.greeter;
    assert.ok(greeter, `/stats has the gRPC service: ${JSON.stringify(out.stats)}`);
    assert.equal(greeter.requests, 20);
    assert.equal(greeter.successes, 20);
    assert.deepEqual(
      greeter.endpoints.map((e) => [e.address, e.requests]).sort(),
      [
        [backends[0]!.address, 10],
        [backends[1]!.address, 10],
      ].sort(),
    );
    assert.equal(out.histogram, true, '/metrics has rpc_client_call_duration');
    assert.match(out.countLine ?? '', /rpc_grpc_status_code="0"/);
    assert.match(out.countLine ?? '', /rpc_method="SayHello"/);
  });

  it('a zero-code gRPC server with meshServerInterceptors(mesh) records inbound rows per method and caller', async () => {
    const port = await freePort();
    await dir.write(
      'self-mesh.yaml',
      `services:\n  greeter:\n    protocol: grpc\n    endpoints: ["127.0.0.1:${port}"]\n`,
    );
    await dir.write(
      'grpc-self.mjs',
      `import * as grpc from ${GRPC};
import { mesh, admin } from ${REGISTER};
import { meshGrpcOptions, meshServerInterceptors } from ${MESHLET};
const definition = ${GREETER_DEFINITION};
const server = new grpc.Server({ interceptors: meshServerInterceptors(mesh) });
server.addService(definition, {
  sayHello(call, callback) {
    callback(null, { from: 'self', hello: call.request.name, caller: call.metadata.get('meshlet-caller')[0] });
  },
});
await new Promise((resolve, reject) =>
  server.bindAsync('127.0.0.1:${port}', grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
);
const Greeter = grpc.makeGenericClientConstructor(definition, 'Greeter');
const client = new Greeter('meshlet:///greeter', grpc.credentials.createInsecure(), meshGrpcOptions(mesh));
for (let i = 0; i < 5; i++) {
  await new Promise((resolve, reject) => client.sayHello({ name: 'n' + i }, (err, res) => (err ? reject(err) : resolve(res))));
}
client.close();
const stats = await (await fetch('http://127.0.0.1:' + (await admin).address.port + '/stats')).json();
const metrics = await (await fetch('http://127.0.0.1:' + (await admin).address.port + '/metrics')).text();
console.log(JSON.stringify({ inbound: stats.inbound, server: metrics.includes('# TYPE rpc_server_call_duration histogram') }));
server.forceShutdown();
`,
    );
    const { code, stdout, stderr } = await runApp(dir.path, 'grpc-self.mjs', {
      MESHLET_SERVICE: 'greeter',
      MESHLET_CONFIG: 'self-mesh.yaml',
      MESHLET_ADMIN_PORT: '0',
    });
    assert.equal(code, 0, `the app ran and exited by itself; stderr: ${stderr}`);
    const out = JSON.parse(stdout) as {
      inbound: Array<{ route: string; caller: string; requests: number; successes: number }>;
      server: boolean;
    };
    const row = out.inbound.find((r) => r.route === '/demo.Greeter/SayHello');
    assert.ok(row, `an inbound row for the method: ${JSON.stringify(out.inbound)}`);
    assert.equal(row.caller, 'greeter');
    assert.equal(row.requests, 5);
    assert.equal(row.successes, 5);
    assert.equal(out.server, true, '/metrics has rpc_server_call_duration');
  });

  it('stops at start on a gRPC config mistake in MESHLET_CONFIG, naming the file, line and method path', async () => {
    await dir.write(
      'bad-grpc.yaml',
      'services:\n  greeter:\n    protocol: grpc\n    endpoints: ["127.0.0.1:1"]\n' +
        '    methods:\n      "demo.Greeter/SayHello":\n        retry: { retryOn: [reset] }\n',
    );
    await dir.write('never.mjs', "console.log('the app ran');\n");
    const { code, stdout, stderr } = await runApp(dir.path, 'never.mjs', { MESHLET_CONFIG: 'bad-grpc.yaml' });
    assert.equal(code, 1, stderr);
    assert.equal(stdout, '', 'the app did not run');
    assert.match(
      stderr,
      /^meshlet\/register: cannot start: MESHLET_CONFIG: bad-grpc\.yaml:7:\d+: services\.greeter\.methods\["demo\.Greeter\/SayHello"\]\.retry\.retryOn\[0\]: "reset" is an HTTP retry condition/,
    );
  });

  describe('with a control server', () => {
    /** A gRPC service with no endpoints in the config: its servers register themselves. */
    const REGISTERED = '  registered:\n    protocol: grpc\n';
    let control: ControlServer;
    let configPath: string;

    before(async () => {
      configPath = await dir.write(
        'control-mesh.yaml',
        `services:\n  greeter:\n    protocol: grpc\n    endpoints: ["${backends[0]!.address}"]\n` + REGISTERED,
      );
      control = createControlServer({
        configPath,
        host: '127.0.0.1',
        port: 0,
        adminPort: 0,
        logger: pino({ level: 'silent' }),
      });
      await control.start();
    });
    after(async () => {
      await control.stop();
    });

    it('calls a gRPC service the control server pushes, from the first call, and follows its changes', async () => {
      await dir.write(
        'grpc-control.mjs',
        `import * as grpc from ${GRPC};
import { mesh, closeMeshlet } from ${REGISTER};
import { meshGrpcOptions } from ${MESHLET};
const Greeter = grpc.makeGenericClientConstructor(${GREETER_DEFINITION}, 'Greeter');
// Made at once: the call waits for the control server's first config instead of failing.
const client = new Greeter('meshlet:///greeter', grpc.credentials.createInsecure(), meshGrpcOptions(mesh));
const sayHello = () =>
  new Promise((resolve, reject) => client.sayHello({ name: 'x' }, (err, res) => (err ? reject(err) : resolve(res.from))));
console.log('FIRST', await sayHello());
// Now the test changes the served config; keep calling until the new endpoint answers.
const seen = new Set();
for (;;) {
  const from = await sayHello();
  if (!seen.has(from)) {
    seen.add(from);
    console.log('FROM', from);
  }
  if (from === 'g3') break;
  await new Promise((r) => setTimeout(r, 20));
}
let more = 0;
for (let i = 0; i < 10; i++) if ((await sayHello()) === 'g3') more++;
console.log('AFTER', more);
client.close();
await closeMeshlet();
`,
      );
      const app = startApp(dir.path, 'grpc-control.mjs', {
        MESHLET_SERVICE: 'web',
        MESHLET_CONTROL_PLANE: `127.0.0.1:${control.address.port}`,
      });
      const timer = setTimeout(() => app.child.kill('SIGKILL'), 60_000); // a liveness bound (start-up on a loaded machine)
      try {
        assert.equal(await app.line(/^FIRST /), 'FIRST g1');
        await writeFile(
          configPath,
          `services:\n  greeter:\n    protocol: grpc\n    endpoints: ["${backends[2]!.address}"]\n` + REGISTERED,
        );
        await waitFor('the pushed endpoint to answer', async () => (/FROM g3/.test(app.stdout()) ? true : undefined));
        const { code } = await app.exited;
        assert.equal(code, 0, app.stderr());
        assert.match(app.stdout(), /AFTER 10/, 'every call after the change went to the new endpoint');
      } finally {
        clearTimeout(timer);
        app.child.kill('SIGKILL');
      }
    });

    it('a zero-code gRPC server registers itself (MESHLET_REGISTER), is called through the mesh, and withdraws on SIGTERM', async () => {
      const port = await freePort();
      await dir.write(
        'grpc-registered.mjs',
        `import * as grpc from ${GRPC};
import { mesh } from ${REGISTER};
import { meshServerInterceptors } from ${MESHLET};
const server = new grpc.Server({ interceptors: meshServerInterceptors(mesh) });
server.addService(${GREETER_DEFINITION}, {
  sayHello(call, callback) {
    callback(null, { from: 'registered', hello: call.request.name, caller: call.metadata.get('meshlet-caller')[0] });
  },
});
server.bindAsync('127.0.0.1:${port}', grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  console.log('READY');
});
process.on('SIGTERM', () => server.tryShutdown(() => console.log('STOPPED')));
`,
      );
      const app = startApp(dir.path, 'grpc-registered.mjs', {
        MESHLET_SERVICE: 'registered',
        MESHLET_REGISTER: `127.0.0.1:${port}`,
        MESHLET_CONTROL_PLANE: `127.0.0.1:${control.address.port}`,
      });
      const mesh = createMesh({
        service: 'tester',
        discovery: [controlPlane({ address: `127.0.0.1:${control.address.port}` })],
      });
      const Greeter = grpc.makeGenericClientConstructor(greeterService, 'Greeter');
      const client = new Greeter('meshlet:///registered', grpc.credentials.createInsecure(), meshGrpcOptions(mesh));
      type Reply = { from: string; caller: string };
      const greeter = client as unknown as {
        sayHello(req: { name: string }, cb: (err: grpc.ServiceError | null, res: Reply) => void): void;
      };
      const sayHello = (): Promise<Reply> =>
        new Promise((resolve, reject) =>
          greeter.sayHello({ name: 'r' }, (err, res) => (err ? reject(err) : resolve(res))),
        );
      try {
        await app.line(/READY/);
        const answer = await waitFor('the registered server to answer through the mesh', async () => {
          const res = await sayHello();
          return res.from === 'registered' ? res : undefined;
        });
        assert.equal(answer.caller, 'tester');
        const endpoints = async (): Promise<string[]> => {
          const res = await fetch(`http://127.0.0.1:${control.adminAddress.port}/endpoints/registered`);
          if (res.status === 404) return [];
          return ((await res.json()) as { endpoints: Array<{ address: string }> }).endpoints.map((e) => e.address);
        };
        assert.deepEqual(await endpoints(), [`127.0.0.1:${port}`]);
        app.child.kill('SIGTERM');
        await waitFor('the withdrawal', async () => ((await endpoints()).length === 0 ? true : undefined));
        const { signal } = await app.exited;
        assert.equal(signal, null, `the app's own SIGTERM handler decided; stderr: ${app.stderr()}`);
        assert.match(app.stdout(), /STOPPED/);
      } finally {
        client.close();
        await mesh.close();
        app.child.kill('SIGKILL');
      }
    });
  });
});
