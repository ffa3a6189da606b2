// readEnv: meshlet/register's environment variables, read and checked in one place.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MeshConfigError } from '@meshlet/core';
import { readEnv } from '../src/env.ts';
import { TempDir } from './helpers.ts';

const ROUTED = `services:
  web:
    endpoints: ["127.0.0.1:1"]
    routes:
      - match: { pathPrefix: /api }
        backends: [{ service: api }]
`;

describe('readEnv', () => {
  let dir: TempDir;
  before(async () => {
    dir = await TempDir.create();
    await dir.write('mesh.yaml', 'services:\n  users:\n    endpoints: ["127.0.0.1:1"]\n');
    await dir.write('routed.yaml', ROUTED);
  });
  after(() => dir.remove());

  function issues(env: Record<string, string>): Array<{ path: string; message: string }> {
    try {
      readEnv(env, dir.path);
    } catch (err) {
      assert.ok(err instanceof MeshConfigError, String(err));
      return [...err.issues];
    }
    assert.fail('expected a MeshConfigError');
  }

  it('reads every variable, with defaults', () => {
    const s = readEnv(
      {
        MESHLET_SERVICE: 'web',
        MESHLET_CONFIG: 'mesh.yaml',
        MESHLET_CONTROL_PLANE: '127.0.0.1:15010',
        MESHLET_CACHE_DIR: '/tmp/x',
        MESHLET_ZONE: 'eu-1a',
        MESHLET_REGISTER: '10.0.0.7:8080',
        MESHLET_ADMIN_PORT: '9990',
        MESHLET_ADMIN_HOST: '0.0.0.0',
        MESHLET_UNKNOWN_HOSTS: 'reject',
        MESHLET_SHUTDOWN_GRACE_MS: '2500',
        MESHLET_STARTUP_TIMEOUT_MS: '3000',
        MESHLET_STATS_WINDOW_MS: '5000',
      },
      dir.path,
    );
    assert.equal(s.service, 'web');
    assert.deepEqual(Object.keys(s.config!.services!), ['users']);
    assert.equal(s.controlPlane, '127.0.0.1:15010');
    assert.equal(s.register, '10.0.0.7:8080');
    assert.equal(s.adminPort, 9990);
    assert.equal(s.adminHost, '0.0.0.0');
    assert.equal(s.unknownHosts, 'reject');
    assert.equal(s.shutdownGraceMs, 2500);
    assert.equal(s.startupTimeoutMs, 3000);
    assert.equal(s.statsWindowMs, 5000);

    const d = readEnv(
      { MESHLET_CONFIG: 'mesh.yaml', MESHLET_ADMIN_PORT: ' ', MESHLET_UNKNOWN_HOSTS: 'pass' },
      dir.path,
    );
    assert.equal(d.adminPort, undefined, 'an empty variable is unset');
    assert.equal(d.adminHost, '127.0.0.1');
    assert.equal(d.unknownHosts, 'passthrough');
    assert.equal(d.shutdownGraceMs, 10_000);
    const v6 = readEnv({ MESHLET_CONFIG: 'mesh.yaml', MESHLET_ADMIN_PORT: '0', MESHLET_ADMIN_HOST: '[::1]' }, dir.path);
    assert.equal(v6.adminHost, '::1', 'brackets as in a URL are dropped');
  });

  it('a config file beside a control plane may route to services only the control plane knows', () => {
    assert.match(issues({ MESHLET_CONFIG: 'routed.yaml' })[0]!.message, /routed\.yaml:\d+:\d+: services\.web\.routes/);
    const s = readEnv({ MESHLET_CONFIG: 'routed.yaml', MESHLET_CONTROL_PLANE: '127.0.0.1:15010' }, dir.path);
    assert.deepEqual(Object.keys(s.config!.services!), ['web']);
  });

  it('variables that need another one say which', () => {
    assert.deepEqual(
      issues({ MESHLET_CONFIG: 'mesh.yaml', MESHLET_CACHE_DIR: '/tmp/x', MESHLET_ADMIN_HOST: '0.0.0.0' }).map(
        (i) => i.path,
      ),
      ['MESHLET_CACHE_DIR', 'MESHLET_ADMIN_HOST'],
    );
  });

  it('a directory as config file, a registration address without a port', () => {
    const found = issues({
      MESHLET_CONFIG: '.',
      MESHLET_SERVICE: 'web',
      MESHLET_CONTROL_PLANE: '127.0.0.1:15010',
      MESHLET_REGISTER: '10.0.0.7',
    });
    assert.match(found[0]!.message, /^\.: is not a regular file/);
    assert.equal(found[1]!.path, 'MESHLET_REGISTER');
  });

  it('an unknown MESHLET_ variable far from any real one is a warning, not an error', () => {
    const s = readEnv(
      { MESHLET_CONFIG: 'mesh.yaml', MESHLET_SOMETHING_ELSE_ENTIRELY: '1', MESHLET_BIN: 'x', MESHLET_PORT: '8080' },
      dir.path,
    );
    assert.equal(s.warnings.length, 3, 'short names one letter apart from nothing are not typos of MESHLET_ZONE');
    assert.match(s.warnings[0]!, /MESHLET_SOMETHING_ELSE_ENTIRELY is not a meshlet\/register variable \(ignored\)/);
  });

  it('a likely misspelling is refused with the real name', () => {
    assert.deepEqual(
      issues({ MESHLET_CONFIG: 'mesh.yaml', MESHLET_CONTROL_PLAIN: 'x', MESHLET_SERVICES: 'web' }).map(
        (i) => i.message,
      ),
      [
        'is not a meshlet/register variable: did you mean MESHLET_CONTROL_PLANE?',
        'is not a meshlet/register variable: did you mean MESHLET_SERVICE?',
      ],
    );
  });
});
