import assert from 'node:assert/strict';
import { MeshConfigError } from '../../src/errors.js';

/** Asserts `fn` throws a MeshConfigError and returns it. */
export function configError(fn: () => unknown): MeshConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof MeshConfigError, `expected MeshConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a MeshConfigError, nothing was thrown');
}

/** Asserts `fn` throws a MeshConfigError whose first issue is exactly `path: message`. */
export function assertIssue(fn: () => unknown, path: string, message: string): MeshConfigError {
  const err = configError(fn);
  assert.equal(err.path, path, err.message);
  assert.equal(err.message, `${path}: ${message}`);
  return err;
}
