// Control-plane smoke test, run inside the fresh app that installed the four tarballs, the
// way a user meets them: the `meshlet` binary through npx (check, --version, control), then a
// mesh whose only config comes from that control server over gRPC (@meshlet/discovery's
// controlPlane), and one call through @meshlet/http's fetch to a local server. The control
// server is stopped with SIGTERM and must exit 0. Nothing may stay open: the caller's
// timeout fails a process that does not exit.
//
// The children run on this process's Node (its directory is put first on PATH, so npx and
// the bin's `#!/usr/bin/env node` pick it), so the script tests whichever Node runs it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { delimiter, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { createMesh } from '@meshlet/core';
import { controlPlane } from '@meshlet/discovery';
import { createMeshFetch } from '@meshlet/http';

const STEP_TIMEOUT_MS = 20_000;
const env = {
  ...process.env,
  PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`,
  npm_config_update_notifier: 'false',
};
const controlVersion = JSON.parse(
  readFileSync(createRequire(import.meta.url).resolve('@meshlet/control/package.json'), 'utf8'),
).version;

/** `npx --no -- meshlet <args>`: the installed bin or nothing (--no: never fetch a package of that name). */
function npxMeshlet(args, options = {}) {
  return spawn('npx', ['--no', '--', 'meshlet', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

/** Runs `meshlet <args>` to its end: { code, stdout, stderr }. */
async function meshlet(args) {
  const child = npxMeshlet(args);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), STEP_TIMEOUT_MS);
  const [code, signal] = await once(child, 'close');
  clearTimeout(timer);
  const shown = `npx meshlet ${args.join(' ')} (exit ${code ?? signal})\nstdout: ${stdout}\nstderr: ${stderr}`;
  return { code, stdout, stderr, shown };
}

// The service the control server points at.
const backend = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(`hello ${req.method} ${req.url} host=${req.headers.host}`);
});
backend.listen(0, '127.0.0.1');
await once(backend, 'listening');
const backendAddress = `127.0.0.1:${backend.address().port}`;

writeFileSync(
  'mesh.yaml',
  `services:\n  hello:\n    endpoints: ['${backendAddress}']\n    retry: { maxAttempts: 2 }\n`,
);
writeFileSync(
  'mesh-invalid.yaml',
  `services:\n  hello:\n    endpoints: ['${backendAddress}']\n    retry: { maxAttempts: 0 }\n`,
);

// The CLI, as installed: check a good and a bad file, --version.
const [good, invalid, version] = await Promise.all([
  meshlet(['check', '--config', 'mesh.yaml']),
  meshlet(['check', '--config', 'mesh-invalid.yaml']),
  meshlet(['--version']),
]);
assert.equal(good.code, 0, good.shown);
assert.match(good.stdout, /√ mesh\.yaml is a valid mesh config \(1 service\)/, good.shown);
assert.equal(invalid.code, 1, invalid.shown);
assert.match(
  invalid.stdout + invalid.stderr,
  /mesh-invalid\.yaml.*services\.hello\.retry\.maxAttempts/s,
  invalid.shown,
);
assert.equal(version.code, 0, version.shown);
assert.equal(version.stdout.trim(), controlVersion, version.shown);

// The control server, in a process group of its own so that a failure here can take it down
// with npx (the server is npx's child, and a signal to npx is not passed on).
const control = npxMeshlet(
  ['control', '--config', 'mesh.yaml', '--port', '0', '--admin-port', '0', '--host', '127.0.0.1'],
  { detached: true },
);
// The whole group, even when npx has exited already: the server may have outlived it.
const killControl = () => {
  try {
    process.kill(-control.pid, 'SIGKILL');
  } catch {
    // the group is gone
  }
};
process.on('exit', killControl);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    killControl();
    process.exit(1);
  });
}
const logLines = [];
let controlStderr = '';
control.stderr.setEncoding('utf8').on('data', (d) => (controlStderr += d));
const closed = once(control, 'close');
const start = await new Promise((resolve, reject) => {
  const timer = setTimeout(
    () => reject(new Error(`no "start" line from meshlet control in ${STEP_TIMEOUT_MS} ms`)),
    STEP_TIMEOUT_MS,
  );
  createInterface({ input: control.stdout }).on('line', (line) => {
    logLines.push(line);
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      reject(new Error(`meshlet control wrote a line that is not JSON: ${line}`));
      return;
    }
    if (entry.event === 'start') {
      clearTimeout(timer);
      resolve(entry);
    }
  });
  closed.then(([code, signal]) => {
    clearTimeout(timer);
    reject(
      new Error(
        `meshlet control exited (${code ?? signal}) before its start line\n${logLines.join('\n')}\n${controlStderr}`,
      ),
    );
  });
}).catch((err) => {
  killControl();
  throw err;
});
assert.equal(start.name, 'meshlet-control');
assert.equal(start.config, 'mesh.yaml');
assert.equal(start.services, 1);
for (const key of ['port', 'adminPort', 'pid']) {
  assert.ok(Number.isInteger(start[key]) && start[key] > 0, `start line has no ${key}: ${JSON.stringify(start)}`);
}

// A mesh configured by the control server only.
const mesh = createMesh({ discovery: [controlPlane({ address: `127.0.0.1:${start.port}` })] });
await mesh.ready({ timeoutMs: STEP_TIMEOUT_MS });
const fetch = createMeshFetch(mesh);
const res = await fetch('http://hello/via-control?x=1');
assert.equal(res.status, 200);
assert.equal(await res.text(), 'hello GET /via-control?x=1 host=hello');
const stats = mesh.stats().services.hello;
assert.equal(stats.successes, 1);
assert.deepEqual(
  stats.endpoints.map((e) => e.address),
  [backendAddress],
);

// The CLI against the running server's admin port: healthy, ready, this process connected.
const status = await meshlet(['check', '--control', `127.0.0.1:${start.adminPort}`, '--json']);
assert.equal(status.code, 0, status.shown);
const report = JSON.parse(status.stdout);
assert.equal(report.ok, true, status.shown);
assert.ok(
  report.checks.some((c) => /^1 client connected/.test(c.message)),
  status.shown,
);

// Shut down: the mesh ends its stream, then SIGTERM to the server itself (npx waits on it and
// exits with its code).
await mesh.close();
process.kill(start.pid, 'SIGTERM');
const [code, signal] = await closed;
const events = logLines.map((l) => JSON.parse(l).event);
assert.equal(
  code,
  0,
  `meshlet control exited with ${code ?? signal} after SIGTERM\n${logLines.join('\n')}\n${controlStderr}`,
);
assert.ok(events.includes('stopped'), `no "stopped" line after SIGTERM: ${events.join(', ')}`);
process.off('exit', killControl);

backend.close();
await once(backend, 'close');
console.log(
  `pack-smoke: control ok on Node ${process.version}: npx meshlet check/--version/control (SIGTERM, exit 0), ` +
    `controlPlane config, fetch through the mesh`,
);
