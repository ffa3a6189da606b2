/**
 * A demo backend: `node --import tsx backend.ts <name> <delayMs> <failPercent>`.
 * Answers 200 after delayMs (±20% jitter), or 503 for failPercent% of requests.
 * Prints its port on stdout once listening.
 */
import http from 'node:http';

const [name = 'backend', delayArg = '1', failArg = '0'] = process.argv.slice(2);
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
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  if (addr && typeof addr === 'object') process.stdout.write(`${addr.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('disconnect', () => process.exit(0));
