// watchFile inside a real createMesh: the mesh is ready from the file, an edit saved the way
// editors save (temp file, then rename) changes what it runs, and an invalid edit changes nothing.
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createMesh } from '@meshlet/core';
import { watchFile } from '../../src/file/index.js';

async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('watchFile in a mesh', () => {
  let dir = '';
  after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

  it('serves the file, follows an atomic save, and keeps the last good config on an invalid one', async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshlet-watch-mesh-'));
    const path = join(dir, 'mesh.yaml');
    const save = async (text: string): Promise<void> => {
      await writeFile(`${path}.tmp`, text);
      await rename(`${path}.tmp`, path);
    };
    await writeFile(path, 'services:\n  users:\n    endpoints: ["10.0.0.1:80"]\n');
    const source = watchFile(path, { debounceMs: 20 });
    const mesh = createMesh({ discovery: [source] });
    try {
      await mesh.ready({ timeoutMs: 5000 });
      const addresses = () => mesh.stats().services.users?.endpoints.map((e) => e.address) ?? [];
      assert.deepEqual(addresses(), ['10.0.0.1:80']);

      await save('services:\n  users:\n    endpoints: ["10.0.0.2:80", "10.0.0.3:80"]\n');
      await until(() => addresses().length === 2, 'the edit is applied');
      assert.deepEqual(addresses(), ['10.0.0.2:80', '10.0.0.3:80']);

      await save('services:\n  users:\n    endpoints: ["10.0.0.4:80"]\n    retry: { maxAttempts: -1 }\n');
      await until(() => mesh.discoveryStatus()[0].lastError !== undefined, 'the invalid edit is reported');
      assert.match(mesh.discoveryStatus()[0].lastError!, /maxAttempts/);
      assert.deepEqual(addresses(), ['10.0.0.2:80', '10.0.0.3:80'], 'the last good config keeps serving');
    } finally {
      await mesh.close();
    }
  });
});
