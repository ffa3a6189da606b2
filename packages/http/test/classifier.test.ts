// The HTTP classifier: the caller's own faults are 'invalid-request' (never the endpoint's).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidRequestError, type CallContext } from '@meshlet/core';
import { HttpClassifier } from '../src/classifier.js';

const ctx = {} as CallContext;
const err = (code: string): Error => Object.assign(new Error(code), { code });

describe('HttpClassifier', () => {
  const c = new HttpClassifier(undefined);

  it('classifies undici’s local refusals and InvalidRequestError as invalid-request, network faults as before', () => {
    for (const code of ['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH']) {
      assert.equal(c.classifyError(err(code), ctx), 'invalid-request', code);
    }
    assert.equal(c.classifyError(new InvalidRequestError('svc', 'bad', err('ECONNRESET')), ctx), 'invalid-request');
    // … while network faults stay the endpoint's.
    assert.equal(c.classifyError(err('ECONNREFUSED'), ctx), 'retryable');
    assert.equal(c.classifyError(err('ECONNRESET'), ctx), 'retryable');
    assert.equal(c.classifyError(err('UND_ERR_RES_CONTENT_LENGTH_MISMATCH'), ctx), 'failure');
    // A reset that happens to wrap an invalid-argument error is still a reset.
    assert.equal(
      c.classifyError(Object.assign(err('ECONNRESET'), { cause: err('UND_ERR_INVALID_ARG') }), ctx),
      'retryable',
    );
  });
});
