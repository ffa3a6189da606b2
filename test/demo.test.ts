// Scenario: `npm run demo` still works end to end through the control server: the demo starts
// `meshlet control` on a copy of examples/demo/mesh.yaml, four backends register themselves, the
// client gets its config over the stream and sends traffic; the table shows the 90/10 canary split.
// Editing the file while it runs (50/50) is reloaded by the control server, pushed, and moves the
// shares. The flaky backend is ejected, comes back after its 3 s ejection and is ejected again; the
// legend explains the columns. The demo ends by itself (DEMO_SECONDS) with exit code 0 and no process
// left behind.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const demoFile = path.join(root, 'examples/demo/demo.ts');
const meshYaml = path.join(root, 'examples/demo/mesh.yaml');

interface Split {
  v1: number;
  v2: number;
  calls: number;
  weights: string;
}

const SPLIT =
  /canary: catalog-v1 ([\d.]+)% \((\d+)\/s\), catalog-v2 ([\d.]+)% \((\d+)\/s\)\s+weights: (catalog-v1 \d+ \/ catalog-v2 \d+)/;

function splits(text: string): Split[] {
  const out: Split[] = [];
  for (const line of text.split('\n')) {
    const m = SPLIT.exec(line);
    if (m !== null)
      out.push({ v1: Number(m[1]), v2: Number(m[3]), calls: Number(m[2]) + Number(m[4]), weights: m[5]! });
  }
  return out;
}

describe('the demo (npm run demo)', () => {
  let demo: ChildProcess | undefined;
  let dir: string | undefined;

  after(async () => {
    if (demo !== undefined && demo.exitCode === null && demo.signalCode === null) {
      demo.kill('SIGKILL');
      await once(demo, 'exit');
    }
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('runs through the control server, shows the canary split and follows an edit of mesh.yaml', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'meshlet-demo-'));
    const config = path.join(dir, 'mesh.yaml');
    await copyFile(meshYaml, config);
    demo = spawn(process.execPath, ['--import', 'tsx', demoFile], {
      cwd: root,
      env: { ...process.env, DEMO_SECONDS: '9', DEMO_RPS: '200', DEMO_CONFIG: config },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    demo.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    demo.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const exited = once(demo, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;

    // Wait for two tables with traffic at 90/10, then edit the weights to 50/50 (an atomic save).
    const deadline = Date.now() + 40_000; // a liveness bound (start-up under a parallel test run), not a speed check
    while (splits(out).filter((s) => s.calls > 0).length < 2) {
      assert.ok(Date.now() < deadline && demo.exitCode === null, `no traffic in the demo's table:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const edited = (await readFile(config, 'utf8'))
      .replace(/service: catalog-v1\n(\s+)weight: 90/, 'service: catalog-v1\n$1weight: 50')
      .replace(/service: catalog-v2\n(\s+)weight: 10/, 'service: catalog-v2\n$1weight: 50');
    assert.notEqual(edited, await readFile(config, 'utf8'), 'the test could not find the weights in mesh.yaml');
    const editedAt = out.length;
    await writeFile(`${config}.tmp`, edited);
    await rename(`${config}.tmp`, config);

    const [code] = await exited;
    assert.equal(code, 0, `the demo failed:\n${out}\n${err}`);

    const before = splits(out.slice(0, editedAt)).filter((s) => s.calls >= 50);
    assert.ok(before.length >= 1, `no table with traffic before the edit:\n${out}`);
    for (const s of before) {
      assert.equal(s.weights, 'catalog-v1 90 / catalog-v2 10');
      assert.ok(s.v2 > 1 && s.v2 < 25, `canary share ${s.v2}% is not near 10% before the edit:\n${out}`);
    }
    assert.match(out, /control +\d+s mesh\.yaml reloaded: catalog-v1 50 \/ catalog-v2 50/, 'the reload is shown');
    const after = splits(out.slice(editedAt)).filter((s) => s.weights === 'catalog-v1 50 / catalog-v2 50');
    assert.ok(after.length >= 2, `fewer than two tables after the edit:\n${out}`);
    // The second table after the reload covers a whole second at the new weights.
    assert.ok(
      after.slice(1).some((s) => s.calls >= 50 && s.v2 > 35 && s.v2 < 65),
      `the canary share did not move to ~50% after the edit:\n${out}`,
    );

    // Self-registration: the backends were registered by themselves, not listed in the file.
    assert.match(out, /registered catalog-v1 127\.0\.0\.1:\d+|registered catalog-v2 127\.0\.0\.1:\d+/);
    const done =
      /done: (\d+) calls, ([\d.]+)% answered 200 as seen by the caller; the flaky backend was ejected (\d+) time/.exec(
        out,
      );
    assert.ok(done !== null, `no summary line:\n${out}`);
    assert.ok(Number(done[1]) > 500, `only ${done[1]} calls were made`);
    assert.ok(Number(done[2]) >= 95, `only ${done[2]}% of calls succeeded:\n${out}`);
    // Ejected for 3 s (the demo's config), it comes back and fails again: ejected at least twice in the run.
    assert.ok(Number(done[3]) >= 2, `the flaky backend was not ejected again after it came back:\n${out}`);
    const rows = [...out.matchAll(/^\s*catalog-v1 flaky \S+ +(\d+) .* (healthy|ejected|open|half-open) +(\d+)\s*$/gm)];
    // The table shows it too: ejected once, then (back, and failing again) ejected a second time.
    const first = rows.findIndex((m) => m[2] === 'ejected' && m[3] === '1');
    assert.ok(
      first !== -1 && rows.slice(first + 1).some((m) => Number(m[3]) >= 2),
      `the table never showed the flaky backend ejected, then ejected again:\n${rows.map((m) => m[0]).join('\n')}`,
    );
    // While ejected it gets no traffic: its latency columns say "—", not 0.0.
    assert.ok(
      rows.some((m) => m[1] === '0' && / — +— /.test(m[0])),
      `no row of the ejected flaky backend shows "—" for its latencies:\n${rows.map((m) => m[0]).join('\n')}`,
    );
    // The legend explains the columns.
    for (const column of ['att/s', 'success', 'p50/p99 ms', 'ewma ms', 'state', 'ejections']) {
      assert.match(out, new RegExp(`^${column.replace('/', '\\/')} +\\S`, 'm'), `the legend lacks "${column}"`);
    }
  });
});
