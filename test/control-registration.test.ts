// Scenario: two backend processes (test/fixtures/registering-backend.ts) self-register as
// `users` with a real `meshlet control` process; a caller mesh in this process sends them
// traffic. One backend is SIGKILLed: the control server withdraws its endpoint once the
// registration grace period has passed (the server's default, 5 s: `meshlet control` has no flag
// for it), the caller drops it within grace + 1 s, and from then on it gets no more traffic while
// every request keeps succeeding.
// `users` is declared in mesh.yaml with a retry policy and no endpoints: its endpoints are the
// registered ones.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createMesh } from '@meshlet/core';
import { controlPlane } from '@meshlet/discovery';
import { createMeshFetch } from '@meshlet/http';
import type { Mesh } from './helpers/load.ts';
import { ConfigDir, ControlProcess, Load, describeSamples, servedBy, spawnNode, waitFor } from './fixtures/control.ts';

/** The control server's default `registrationGraceMs`. */
const GRACE_MS = 5000;

interface Backend {
  id: string;
  address: string;
  child: ChildProcess;
  exited: Promise<NodeJS.Signals | null>;
}

/** Spawns a registering backend and resolves once the control server accepted its registration. */
function startBackend(control: string, service: string, id: string): Promise<Backend> {
  const child = spawnNode(['--import', 'tsx', 'test/fixtures/registering-backend.ts', control, service, id]);
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.once('exit', (_code, signal) => resolve(signal)),
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      buf += s;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = JSON.parse(buf.slice(0, nl)) as { event: string; address: string };
      if (line.event === 'registered') resolve({ id, address: line.address, child, exited });
    });
    void exited.then((signal) => reject(new Error(`backend ${id} exited (${signal}) before registering: ${stderr}`)));
  });
}

describe('self-registered backend process killed with SIGKILL', () => {
  let config: ConfigDir;
  let control: ControlProcess;
  const backends: Backend[] = [];
  let mesh: Mesh;

  before(async () => {
    config = await ConfigDir.create('services:\n  users:\n    retry: { maxAttempts: 3 }\n');
    control = await ControlProcess.start(config.configPath);
    backends.push(
      ...(await Promise.all([
        startBackend(control.address, 'users', 'b1'),
        startBackend(control.address, 'users', 'b2'),
      ])),
    );
  });

  after(async () => {
    await mesh?.close();
    for (const b of backends) {
      if (b.child.exitCode === null && b.child.signalCode === null) b.child.kill('SIGKILL');
      await b.exited;
    }
    await control?.kill();
    await config?.remove();
  });

  it(`its endpoint is withdrawn within the grace period (${GRACE_MS} ms) + 1 s and gets no more traffic`, async () => {
    const [b1, b2] = backends;
    mesh = createMesh({
      service: 'front',
      discovery: [controlPlane({ address: control.address, node: { id: 'front-1' } })],
    });
    const fetch = createMeshFetch(mesh);
    await mesh.ready({ timeoutMs: 10_000 });
    const endpoints = (): string[] => (mesh.stats().services.users?.endpoints ?? []).map((e) => e.address).sort();
    await waitFor('both registered endpoints in the caller', () =>
      endpoints().length === 2 ? endpoints() : undefined,
    );
    assert.deepEqual(endpoints(), [b1.address, b2.address].sort());
    // The declared policy applies to the registered endpoints.
    const { body: view } = await control.admin('/endpoints/users');
    assert.equal(view.configured, true);
    assert.deepEqual(
      view.endpoints.map((e: { address: string; source: string; nodeId: string }) => [e.source, e.nodeId]).sort(),
      [
        ['registration', 'b1'],
        ['registration', 'b2'],
      ],
    );

    const load = new Load(fetch, 'http://users/');
    let killCalledAt = 0;
    let killedAt = 0;
    let withdrawnAt = 0;
    let retriesAtWithdrawal = 0;
    try {
      await waitFor('traffic on both backends', () => {
        const by = new Set(load.samples.map(servedBy));
        return by.has('b1') && by.has('b2');
      });
      // The backend dies at the kill; the test sees its exit a little later (later still on a
      // loaded machine). The grace period runs from the death: "not before the grace period" is
      // measured from before the kill, "within the bound" from the exit, so the harness's own
      // delay in seeing the exit can fail neither.
      killCalledAt = performance.now();
      b1.child.kill('SIGKILL');
      assert.equal(await b1.exited, 'SIGKILL');
      killedAt = performance.now();
      await waitFor(
        "b1's endpoint to leave the caller's mesh",
        () => !endpoints().includes(b1.address),
        GRACE_MS + 5000,
        10,
      );
      withdrawnAt = performance.now();
      // Let calls that picked b1 before the withdrawal finish their retries, then count.
      await load.more(20);
      retriesAtWithdrawal = mesh.stats().services.users.retries;
      await load.more(300);
    } finally {
      await load.stop();
    }

    const took = withdrawnAt - killedAt;
    assert.ok(took <= GRACE_MS + 1000, `withdrawn ${Math.round(took)} ms after the kill (bound ${GRACE_MS + 1000} ms)`);
    const atLeast = withdrawnAt - killCalledAt;
    assert.ok(atLeast >= GRACE_MS - 500, `withdrawn after ${Math.round(atLeast)} ms, before the grace period`);
    assert.deepEqual(endpoints(), [b2.address]);
    assert.deepEqual(load.failures(), [], `failed requests: ${describeSamples(load.failures())}`);
    const after = load.since(withdrawnAt);
    assert.ok(after.length >= 300);
    assert.ok(
      after.every((s) => servedBy(s) === 'b2'),
      'a request after the withdrawal was not served by b2',
    );
    // No attempt went to the dead endpoint any more: nothing needed a retry once the calls started
    // before the withdrawal had finished.
    assert.equal(mesh.stats().services.users.retries, retriesAtWithdrawal, 'retries after the withdrawal');

    const { body: now } = await control.admin('/endpoints/users');
    assert.deepEqual(
      now.endpoints.map((e: { nodeId: string }) => e.nodeId),
      ['b2'],
    );
    const withdrawal = await control.waitForLog((l) => l.event === 'withdrawal' && l.nodeId === 'b1');
    assert.equal(withdrawal.reason, 'stream ended');
  });
});
