// The admin endpoint of `meshlet/register` is unref'd: it must not keep a finished program
// running, and neither may a scraper's keep-alive connection to it. The app below keeps one
// connection to its own admin endpoint busy (a request every 200 ms from an unref'd timer, so the
// server never times the connection out); its program is done at once, so it must exit at once
// instead of living as long as the scraper stays connected.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runApp, TempDir } from './helpers.ts';

describe('meshlet/register: the admin endpoint after unref()', () => {
  let dir: TempDir;
  before(async () => {
    dir = await TempDir.create();
    await dir.write('mesh.yaml', 'services:\n  users:\n    endpoints: ["127.0.0.1:1"]\n');
  });
  after(() => dir.remove());

  it('a kept-alive connection to it does not keep the process running', async () => {
    await dir.write(
      'scraped.mjs',
      `import { connect } from 'node:net';
import { admin } from ${JSON.stringify(import.meta.resolve('../dist/register.js'))};
const { port } = (await admin).address;
const socket = connect({ host: '127.0.0.1', port });
socket.unref(); // the scraper's own side never holds the process
// The program's own work: wait for the first answer.
const work = setTimeout(() => console.log('NO ANSWER'), 15_000);
let answers = 0;
socket.on('data', (d) => {
  answers += (d.toString().match(/HTTP\\/1\\.1 200/g) ?? []).length;
  if (answers >= 1 && work.hasRef()) {
    console.log('ANSWERED');
    clearTimeout(work); // done: only the kept-alive connection is left
  }
});
const ask = () => socket.write('GET /healthz HTTP/1.1\\r\\nHost: admin\\r\\n\\r\\n');
socket.on('connect', ask);
setInterval(ask, 200).unref();
`,
    );
    const { code, signal, stdout, stderr } = await runApp(
      dir.path,
      'scraped.mjs',
      { MESHLET_CONFIG: 'mesh.yaml', MESHLET_ADMIN_PORT: '0' },
      60_000, // kept alive by the connection, the app would run forever: any bound tells; start-up can take 10 s
    );
    assert.equal(signal, null, `the app exited by itself, not killed after 60 s; stderr: ${stderr}`);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /ANSWERED/, 'the connection was served before the program ended');
  });
});
