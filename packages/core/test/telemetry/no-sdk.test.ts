// With no OpenTelemetry SDK (no tracer provider, no propagator), a call starts no span and does
// not even read the active context: the hot path pays nothing for telemetry it cannot export.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_CONTEXT, context, propagation, type ContextManager } from '@opentelemetry/api';
import { createMesh } from '../../src/mesh.js';
import { fakeProtocol, get, ok } from '../helpers/fake-protocol.js';

test('no tracer and no propagator: no span and no context lookup per call; a propagator turns the lookup on', async () => {
  let reads = 0;
  const manager: ContextManager = {
    active: () => {
      reads++;
      return ROOT_CONTEXT;
    },
    with: (_ctx, fn, thisArg, ...args) => fn.call(thisArg, ...args),
    bind: (_ctx, target) => target,
    enable() {
      return this;
    },
    disable() {
      return this;
    },
  };
  context.setGlobalContextManager(manager);
  let spans = 0;
  const p = fakeProtocol((ep, _signal) => ok(ep));
  const spanName = p.spanName;
  p.spanName = (req, ctx) => {
    spans++;
    return spanName(req, ctx);
  };
  const mesh = createMesh({ services: { s: { endpoints: ['a:1'] } } });
  for (let i = 0; i < 10; i++) await mesh.call('s', get(), p);
  assert.equal(reads, 0, 'the active context was read with nothing registered');
  assert.equal(spans, 0, 'a span was started with no tracer provider');
  await mesh.close();

  // A propagator alone: a caller's active span could be worth forwarding, so the context is read.
  propagation.setGlobalPropagator({ inject() {}, extract: (ctx) => ctx, fields: () => ['traceparent'] });
  const mesh2 = createMesh({ services: { s: { endpoints: ['a:1'] } } });
  await mesh2.call('s', get(), p);
  assert.ok(reads > 0);
  await mesh2.close();
  context.disable();
  propagation.disable();
});
