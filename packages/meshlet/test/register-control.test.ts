// Zero-code start joined to a real control server (@meshlet/control, in this process): the
// app's services come from MESHLET_CONTROL_PLANE, the app self-registers (MESHLET_REGISTER)
// once its port accepts connections, its /metrics is scraped, and on SIGTERM the registration
// is withdrawn first, while its own call is still in flight, before the mesh closes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createControlServer, type ControlServer } from '@meshlet/control';
import { freePort, httpServer, startApp, TempDir, waitFor, type TestServer } from './helpers.ts';

describe('meshlet/register with a control server', () => {
  let dir: TempDir;
  let control: ControlServer;
  let slow: TestServer;
  let release!: () => void;
  let released: Promise<void>;
  let arrived!: () => void;
  let arrivedP: Promise<void>;

  before(async () => {
    dir = await TempDir.create();
    released = new Promise<void>((r) => (release = r));
    arrivedP = new Promise<void>((r) => (arrived = r));
    slow = await httpServer((req, res) => {
      if (req.url === '/hold') {
        arrived();
        void released.then(() => res.end('held-done'));
      } else res.end('fast');
    });
    const configPath = await dir.write('mesh.yaml', `services:\n  users:\n    endpoints: ["${slow.address}"]\n`);
    control = createControlServer({
      configPath,
      host: '127.0.0.1',
      port: 0,
      adminPort: 0,
      logger: pino({ level: 'silent' }),
      registrationGraceMs: 60_000, // a withdrawal seen here is the client's, not the stream ending
    });
    await control.start();
  });
  after(async () => {
    release();
    await control.stop();
    await slow.close();
    await dir.remove();
  });

  async function endpointsOf(service: string): Promise<string[]> {
    const res = await fetch(`http://127.0.0.1:${control.adminAddress.port}/endpoints/${service}`);
    if (res.status === 404) return [];
    const body = (await res.json()) as { endpoints: Array<{ address: string }> };
    return body.endpoints.map((e) => e.address);
  }

  it('routes through the served config, registers, serves /metrics, and withdraws first on SIGTERM', async () => {
    const appPort = await freePort();
    const adminPort = await freePort();
    await dir.write(
      'hold.mjs',
      `import { createServer } from 'node:http';
createServer((q, s) => s.end('web')).listen(${appPort}, '127.0.0.1');
for (let i = 0; i < 3; i++) console.log('FAST', await (await fetch('http://users/fast')).text());
console.log('READY');
const res = await fetch('http://users/hold');
console.log('HELD', await res.text());
`,
    );
    const app = startApp(dir.path, 'hold.mjs', {
      MESHLET_SERVICE: 'web',
      MESHLET_CONTROL_PLANE: `127.0.0.1:${control.address.port}`,
      MESHLET_REGISTER: `127.0.0.1:${appPort}`,
      MESHLET_ADMIN_PORT: String(adminPort),
      MESHLET_CACHE_DIR: dir.path,
    });
    try {
      await app.line(/READY/);
      assert.equal(app.stdout().match(/FAST fast/g)?.length, 3, 'calls routed by the control server');
      await waitFor('the registration', async () =>
        (await endpointsOf('web')).includes(`127.0.0.1:${appPort}`) ? true : undefined,
      );

      const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
      assert.match(
        metrics,
        new RegExp(`http_client_request_duration_count\\{[^}]*server_port="${slow.port}"[^}]*\\} 3`),
      );
      const ready = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
      assert.equal(ready.status, 200);
      const body = (await ready.json()) as { sources: Array<{ name: string; ready: boolean }> };
      assert.equal(body.sources.length, 1);
      assert.equal(body.sources[0]!.ready, true);

      await arrivedP;
      app.child.kill('SIGTERM');
      // Withdrawn while the app's own call is still held by the backend.
      await waitFor('the withdrawal', async () => ((await endpointsOf('web')).length === 0 ? true : undefined));
      assert.equal(app.child.exitCode, null, 'still running: its call is in flight');
      assert.doesNotMatch(app.stdout(), /HELD/);
      release();
      const { signal } = await app.exited;
      assert.match(app.stdout(), /HELD held-done/);
      assert.equal(signal, 'SIGTERM', app.stderr());
    } finally {
      release();
      app.child.kill('SIGKILL');
    }
  });
});
