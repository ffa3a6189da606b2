/**
 * One upstream HTTP server (a separate process, so its CPU is not the client's): answers every
 * request with a fixed 1 KiB body over keep-alive. Reports its port to the orchestrator over IPC.
 */
import http from 'node:http';

const BODY = Buffer.alloc(1024, 'meshlet-bench ');

const server = http.createServer((req, res) => {
  // GET has no body, but drain anyway so a POST benchmark could reuse this server.
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
});
// Longer than any client or proxy idle timeout, so the server never races a reused socket.
server.keepAliveTimeout = 300_000;
server.headersTimeout = 301_000;
server.requestTimeout = 0;

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('upstream: no TCP address');
  process.send?.({ type: 'listening', port: address.port });
});

const stop = (): void => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('disconnect', stop);
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
