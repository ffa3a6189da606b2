/**
 * A demo backend: `node --import tsx backend.ts <name> <delayMs> <failPercent> <service> <control host:port>`.
 * Answers 200 after delayMs (±20% jitter), or 503 for failPercent% of requests, and registers
 * itself with the control server as an endpoint of <service> (self-registration: the demo's
 * mesh.yaml lists no endpoints). Prints its port on stdout once the control server has accepted
 * the registration. On SIGTERM it withdraws the registration, then stops.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMesh } from '@meshlet/core';
import { controlPlane } from '@meshlet/discovery';

const [name = 'backend', delayArg = '1', failArg = '0', service = 'catalog-v1', control = '127.0.0.1:15010'] =
  process.argv.slice(2);
const delayMs = Number(delayArg);
const failPercent = Number(failArg);
const body = JSON.stringify({ from: name, data: 'x'.repeat(256) });

const server = http.createServer((req, res) => {
  const fail = Math.random() * 100 < failPercent;
  const wait = delayMs * (0.8 + Math.random() * 0.4);
  setTimeout(() => {
    res.statusCode = fail ? 503 : 200;
    res.setHeader('content-type', 'application/json');
    res.end(fail ? '{"error":"unavailable"}' : body);
  }, wait);
  req.resume();
});
server.keepAliveTimeout = 30_000;
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;

// The backend's own mesh: here only to register (it makes no calls). The control server withdraws
// the registration when this process withdraws it, or ~5 s after its stream drops (a crash).
const mesh = createMesh({
  service,
  discovery: [controlPlane({ address: control, node: { id: `demo-${name}-${process.pid}`, metadata: { name } } })],
});
const registration = await mesh.register({ service, address: `127.0.0.1:${port}`, metadata: { name } });
process.stdout.write(`${port}\n`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Withdraw first so callers stop picking this endpoint; bounded, in case the control server is gone.
  const bounded = new Promise((resolve) => setTimeout(resolve, 1500).unref());
  await Promise.race([registration.withdraw().then(() => mesh.close()), bounded]).catch(() => undefined);
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
// Ctrl-C in the demo's terminal reaches every process of the group: the demo decides when its
// backends stop (after its calls in flight), so a backend ignores SIGINT and waits for SIGTERM.
process.on('SIGINT', () => undefined);
// Stop with the parent even if it dies without a word: its end of our stdin closes.
process.stdin.on('end', () => void stop());
process.stdin.resume();
