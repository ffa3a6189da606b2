// The middleware's own cost per request, without HTTP: meshMiddleware called in a loop with a
// fake request and an EventEmitter response ('finish', then 'close'), against a middleware
// that only calls next(). CPU ns/request (process.cpuUsage), alternating rounds.
//
//   npm run build && node packages/http/bench/inbound-micro.mjs
import { EventEmitter } from 'node:events';
import { createMesh } from '@meshlet/core';
import { meshMiddleware } from '@meshlet/http/express';

const mw = meshMiddleware(createMesh({ services: {} }));
const route = { path: '/users/:id' };
class FakeResponse extends EventEmitter {
  statusCode = 200;
  writableFinished = false;
}
const next = () => {};
function one(mesh) {
  const req = {
    headers: { host: 'x', 'meshlet-timeout': '1000m', 'meshlet-caller': 'bench' },
    method: 'GET',
    url: '/users/42',
    httpVersion: '1.1',
    baseUrl: '',
    route: undefined,
  };
  const res = new FakeResponse();
  if (mesh) mw(req, res, next);
  else next();
  req.route = route; // what Express's router sets
  res.writableFinished = true;
  res.emit('finish');
  res.emit('close');
}
const N = 300_000;
const out = { 'next() only': [], meshMiddleware: [] };
for (let round = 0; round < 5; round++) {
  for (const mesh of [false, true]) {
    for (let i = 0; i < 20_000; i++) one(mesh);
    const t0 = process.cpuUsage();
    for (let i = 0; i < N; i++) one(mesh);
    const u = process.cpuUsage(t0);
    out[mesh ? 'meshMiddleware' : 'next() only'].push(((u.user + u.system) * 1000) / N);
  }
}
for (const [k, xs] of Object.entries(out)) {
  const m = [...xs].sort((a, b) => a - b)[2];
  console.log(`${k.padEnd(16)} ${m.toFixed(0)} ns/request (median of ${xs.map((x) => x.toFixed(0)).join(' ')})`);
}
