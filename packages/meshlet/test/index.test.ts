// The umbrella's public API: one import for the scoped packages' APIs and the admin endpoint.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as meshlet from '../src/index.ts';
import * as core from '@meshlet/core';
import * as http from '@meshlet/http';
import * as grpc from '@meshlet/grpc';
import * as discovery from '@meshlet/discovery';

describe("import ... from 'meshlet'", () => {
  it('re-exports core, http, grpc and discovery in full, the control server, and the admin endpoint', () => {
    for (const [name, mod] of [
      ['@meshlet/core', core],
      ['@meshlet/http', http],
      ['@meshlet/grpc', grpc],
      ['@meshlet/discovery', discovery],
    ] as const) {
      for (const key of Object.keys(mod)) {
        assert.equal(
          (meshlet as Record<string, unknown>)[key],
          (mod as Record<string, unknown>)[key],
          `${name} ${key}`,
        );
      }
    }
    for (const key of [
      'createMesh',
      'createMeshFetch',
      'meshGrpcOptions',
      'meshServerInterceptors',
      'controlPlane',
      'watchFile',
      'createControlServer',
      'MemoryStore',
    ]) {
      assert.equal(typeof (meshlet as Record<string, unknown>)[key], 'function', key);
    }
    assert.equal(typeof meshlet.startAdminServer, 'function');
    assert.equal(typeof meshlet.createAdminMeterProvider, 'function');
    assert.equal('main' in meshlet, false, "the CLI's main is the bin's, not the API");
  });
});
