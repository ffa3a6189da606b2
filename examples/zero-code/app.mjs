// An ordinary Node app that knows nothing of meshlet: it calls its users service by name with the
// global fetch. Started with `node --import meshlet/register app.mjs`, that name goes through the
// mesh (balanced across the endpoints of MESHLET_CONFIG or the control server, retried, timed out,
// measured); every other URL goes out untouched. Without `--import`, http://users/ would be a DNS name.
import http from 'node:http';

const port = Number(process.env.PORT ?? 3010);

const server = http.createServer(async (req, res) => {
  const match = /^\/profile\/([^/?]+)/.exec(req.url ?? '');
  if (match === null) {
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    return;
  }
  try {
    const upstream = await fetch(`http://users/users/${match[1]}`);
    const user = await upstream.json();
    res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(JSON.stringify({ profile: user }));
  } catch (err) {
    res
      .writeHead(502, { 'content-type': 'application/json' })
      .end(JSON.stringify({ error: err?.code ?? err?.cause?.code ?? 'FETCH_FAILED', message: String(err?.message) }));
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ event: 'listening', port: server.address().port }));
});
