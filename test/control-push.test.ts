// Scenario: a real `meshlet control` process serves mesh.yaml to a real client mesh under steady
// load (4 loops of fetches through createMeshFetch to in-process HTTP backends).
// - A valid edit of the file (route api: v1 100 / v2 0 → v1 0 / v2 100) is pushed, ACKed (the
//   admin /clients shows the client at the new version) and moves the traffic, with no failed request.
// - An invalid edit is refused: the server keeps its last good config (traffic unchanged, nothing
//   pushed), /config reports the error naming file and path, `meshlet check --control` exits 1
//   naming it; fixing the file clears the error and is pushed again.
// Server: CLI defaults (debounce 50 ms, file watched with fs.watch plus a 2 s poll). Client:
// controlPlane defaults except node.id.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '@meshlet/core';
import { controlPlane } from '@meshlet/discovery';
import { ENDPOINT_SET_TYPE_URL, SERVICE_TYPE_URL } from '@meshlet/discovery/protocol';
import { createMeshFetch } from '@meshlet/http';
import { ServerSet, type TestServer } from './helpers/servers.ts';
import type { Mesh } from './helpers/load.ts';
import {
  ConfigDir,
  ControlProcess,
  Load,
  describeSamples,
  runCli,
  servedBy,
  waitFor,
  type Sample,
  splitRouteYaml,
} from './fixtures/control.ts';

/** A bound on config edit → traffic moved: fs.watch reacts at once, the 2 s poll is the fallback. */
const MOVE_BOUND_MS = 5000;

interface ClientView {
  nodeId: string;
  service: string;
  acked: Record<string, string>;
  current: Record<string, string>;
  lastNack: unknown;
}

describe('control server: push, ACK and live edits of mesh.yaml under load', () => {
  const servers = new ServerSet();
  let v1: TestServer;
  let v2: TestServer;
  let config: ConfigDir;
  let control: ControlProcess;
  let mesh: Mesh;
  let fetch: ReturnType<typeof createMeshFetch>;

  before(async () => {
    v1 = await servers.start('v1');
    v2 = await servers.start('v2');
    config = await ConfigDir.create(splitRouteYaml(v1, v2, 100, 0));
    control = await ControlProcess.start(config.configPath);
    mesh = createMesh({
      service: 'front',
      discovery: [controlPlane({ address: control.address, node: { id: 'front-1' } })],
    });
    fetch = createMeshFetch(mesh);
    await mesh.ready({ timeoutMs: 10_000 });
  });

  after(async () => {
    await mesh?.close();
    await control?.kill();
    await servers.closeAll();
    await config?.remove();
  });

  /** The client `front-1` as /clients shows it. */
  async function client(): Promise<ClientView | undefined> {
    const { body } = await control.admin<ClientView[]>('/clients');
    return body.find((c) => c.nodeId === 'front-1');
  }

  it('an edit is pushed and ACKed, and traffic moves from v1 to v2 with zero failed requests', async () => {
    // The first config is ACKed for both types.
    const first = await waitFor('front-1 to ACK the first config', async () => {
      const c = await client();
      return c && c.acked[SERVICE_TYPE_URL] !== '' && c.acked[SERVICE_TYPE_URL] === c.current[SERVICE_TYPE_URL]
        ? c
        : undefined;
    });
    assert.equal(first.service, 'front');
    assert.equal(first.acked[ENDPOINT_SET_TYPE_URL], first.current[ENDPOINT_SET_TYPE_URL]);

    const load = new Load(fetch, 'http://api/');
    let samples: Sample[];
    let editedAt = 0;
    let movedAt = 0;
    try {
      await load.more(200);
      assert.deepEqual(new Set(load.samples.map(servedBy)), new Set(['v1']), 'all traffic on v1 before the edit');

      editedAt = performance.now();
      await config.write(splitRouteYaml(v1, v2, 0, 100));
      // Moved: the last 100 requests all went to v2.
      await waitFor(
        'the traffic to move to v2',
        () => {
          const recent = load.since(editedAt);
          return recent.length >= 100 && recent.slice(-100).every((s) => servedBy(s) === 'v2');
        },
        MOVE_BOUND_MS + 5000,
        5,
      );
      movedAt = performance.now();
      const v1Count = v1.count;
      await load.more(300);
      assert.equal(v1.count, v1Count, 'v1 got requests after the traffic had moved');
    } finally {
      samples = await load.stop();
    }

    assert.deepEqual(load.failures(), [], `failed requests: ${describeSamples(load.failures())}`);
    assert.ok(samples.length >= 500, `only ${samples.length} requests under load`);
    const firstV2 = samples.find((s) => servedBy(s) === 'v2')!;
    assert.ok(
      firstV2.at - editedAt < MOVE_BOUND_MS,
      `traffic reached v2 ${Math.round(firstV2.at - editedAt)} ms after the edit (bound ${MOVE_BOUND_MS} ms)`,
    );
    assert.ok(movedAt - editedAt < MOVE_BOUND_MS + 1000, 'traffic moved to v2 entirely within the bound');
    assert.equal(mesh.stats().services['api-v2'].failures, 0);

    // /clients: front-1 has ACKed the new Service version; nothing was NACKed.
    const { body: cfg } = await control.admin('/config');
    const now = await waitFor('front-1 to ACK the new version', async () => {
      const c = await client();
      return c && c.acked[SERVICE_TYPE_URL] === cfg.versions[SERVICE_TYPE_URL] ? c : undefined;
    });
    assert.notEqual(now.acked[SERVICE_TYPE_URL], first.acked[SERVICE_TYPE_URL], 'the Service version changed');
    assert.equal(now.lastNack, null);
    assert.equal(cfg.lastReloadError, null);
  });

  it('an invalid edit keeps the last good config (traffic unaffected), /config and meshlet check name file and path', async () => {
    const { body: before } = await control.admin('/config');
    const load = new Load(fetch, 'http://api/');
    let reloadErrorAt = 0;
    try {
      await load.more(100);
      // maxAttempts -1 is invalid; the rest of the file is a valid edit that must NOT apply (back to v1).
      await config.write(splitRouteYaml(v1, v2, 100, 0, '\n    retry: { maxAttempts: -1 }'));
      const err = await waitFor('/config to report the reload error', async () => {
        const { body } = await control.admin('/config');
        return body.lastReloadError ?? undefined;
      });
      reloadErrorAt = performance.now();
      assert.match(err.message, /mesh\.yaml/, 'the error names the file');
      assert.match(err.message, /services\.api-v2\.retry\.maxAttempts/, 'the error names the path');
      await load.more(300);
    } finally {
      await load.stop();
    }
    assert.deepEqual(load.failures(), [], `failed requests: ${describeSamples(load.failures())}`);
    assert.ok(
      load.samples.every((s) => servedBy(s) === 'v2'),
      'the refused edit (which also routed back to v1) changed the traffic',
    );
    assert.ok(load.since(reloadErrorAt).length >= 300);

    const { body: after } = await control.admin('/config');
    assert.equal(after.version, before.version, 'no new version was pushed for the refused file');
    assert.deepEqual(after.versions, before.versions);
    assert.ok(
      control.lines.some((l) => l.event === 'reload_error' && String(l.err).includes('maxAttempts')),
      'the reload error is logged',
    );

    const check = await runCli(['check', '--control', control.adminAddress]);
    assert.equal(check.code, 1, `meshlet check exit code; stdout:\n${check.stdout}\nstderr:\n${check.stderr}`);
    assert.match(check.stdout, /mesh\.yaml/);
    assert.match(check.stdout, /services\.api-v2\.retry\.maxAttempts/);
    const json = await runCli(['check', '--control', control.adminAddress, '--json']);
    assert.equal(json.code, 1);
    const parsed = JSON.parse(json.stdout) as { ok: boolean; checks: Array<{ ok: boolean; details?: string[] }> };
    assert.equal(parsed.ok, false);
    assert.ok(parsed.checks.some((c) => !c.ok && (c.details ?? []).some((d) => d.includes('maxAttempts'))));

    // Fixing the file clears the error and the fix is pushed (the route goes back to v1).
    await config.write(splitRouteYaml(v1, v2, 100, 0));
    await waitFor('/config to clear the reload error', async () => {
      const { body } = await control.admin('/config');
      return body.lastReloadError === null && body.version !== before.version;
    });
    await waitFor(
      'traffic back on v1',
      async () => {
        const o = await fetch('http://api/');
        return (await o.text()) === 'v1';
      },
      MOVE_BOUND_MS,
    );
    const ok = await runCli(['check', '--control', control.adminAddress]);
    assert.equal(ok.code, 0, `meshlet check after the fix; stdout:\n${ok.stdout}`);
  });
});
