// What inbound adapters share: their factory's argument checks, the tracing switches, the once-only warning.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { propagation, trace, type TextMapPropagator, type Tracer } from '@opentelemetry/api';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { InboundAdapter, inboundAdapterRecorder, recordFailureReporter } from '../../src/inbound/adapter.js';
import { assertIssue } from '../config/config-error.js';
import type { InboundRecorder } from '../../src/inbound/recorder.js';

const recorder: InboundRecorder = { record() {}, tracer: trace.getTracer('test') };
const FLAGS = ['trust', 'tracing'];

const MESH = { inbound: recorder };

describe('inboundAdapterRecorder', () => {
  it("returns the mesh's recorder when mesh and options are well formed", () => {
    assert.equal(inboundAdapterRecorder('meshX', '@meshlet/x', MESH, {}, FLAGS), recorder);
    assert.equal(inboundAdapterRecorder('meshX', '@meshlet/x', MESH, { trust: false }, FLAGS), recorder);
  });

  it('names the factory and its package when the mesh is not a Mesh', () => {
    for (const mesh of [undefined, null, {}, { inbound: {} }]) {
      assertIssue(
        () => inboundAdapterRecorder('meshX', '@meshlet/x', mesh, {}, FLAGS),
        'meshX(mesh)',
        'expected the Mesh returned by createMesh() of @meshlet/core (same version as @meshlet/x)',
      );
    }
  });

  it('names the options and the flag that is not a boolean', () => {
    assertIssue(
      () => inboundAdapterRecorder('meshX', '@meshlet/x', MESH, null, FLAGS),
      'meshX options',
      'expected an object, got null',
    );
    assertIssue(
      () => inboundAdapterRecorder('meshX', '@meshlet/x', MESH, { tracing: 'x'.repeat(50) }, FLAGS),
      'meshX options.tracing',
      `expected true or false, got "${'x'.repeat(40)}"`,
    );
    assertIssue(
      () => inboundAdapterRecorder('meshX', '@meshlet/x', MESH, { trust: 1 }, FLAGS),
      'meshX options.trust',
      'expected true or false, got 1',
    );
  });
});

describe('InboundAdapter', () => {
  const propagator: TextMapPropagator = {
    inject() {},
    extract: (ctx) => ctx,
    fields: () => ['traceparent'],
  };

  it('looks at the registered propagator at most once a second', () => {
    const a = new InboundAdapter(recorder, recorder.tracer, true);
    try {
      a.refresh(0);
      assert.equal(a.propagationOn, false);
      propagation.setGlobalPropagator(propagator);
      a.refresh(999);
      assert.equal(a.propagationOn, false, 'within the second: the old answer');
      a.refresh(1000);
      assert.equal(a.propagationOn, true);
    } finally {
      propagation.disable();
    }
  });

  it('a tracer taken before the SDK registers goes live once a global tracer provider is registered', () => {
    const a = new InboundAdapter(recorder, trace.getTracer('early'), true);
    try {
      a.refresh(0);
      assert.equal(a.tracingOn, false);
      trace.setGlobalTracerProvider(new BasicTracerProvider());
      a.refresh(1000);
      assert.equal(a.tracingOn, true);
    } finally {
      trace.disable();
    }
  });

  it('traces with a real tracer, not with the global no-op one, and never when tracing is off', () => {
    const real = { startSpan() {}, startActiveSpan() {} } as unknown as Tracer;
    const on = new InboundAdapter(recorder, real, true);
    on.refresh(0);
    assert.equal(on.tracingOn, true);
    const noop = new InboundAdapter(recorder, trace.getTracer('test'), true);
    noop.refresh(0);
    assert.equal(noop.tracingOn, false);
    propagation.setGlobalPropagator(propagator);
    try {
      const off = new InboundAdapter(recorder, real, true, false);
      off.refresh(0);
      assert.equal(off.tracingOn, false);
      assert.equal(off.propagationOn, false);
    } finally {
      propagation.disable();
    }
  });
});

describe('recordFailureReporter', () => {
  it('warns once per reporter, naming what failed', async () => {
    const seen: (Error & { code?: string })[] = [];
    const onWarning = (e: Error): void => void seen.push(e);
    process.on('warning', onWarning);
    try {
      const failed = recordFailureReporter('an inbound thing');
      failed(new Error('boom'));
      failed(new Error('again'));
      recordFailureReporter('another thing')(new Error('other'));
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    assert.equal(seen.length, 2, 'one warning per reporter');
    assert.equal(seen[0]!.code, 'MESHLET_INBOUND_RECORD_FAILED');
    assert.match(
      seen[0]!.message,
      /^meshlet: recording an inbound thing failed \(further failures are not reported\): Error: boom/,
    );
    assert.match(seen[1]!.message, /^meshlet: recording another thing failed .*Error: other/);
  });
});
