/**
 * `protocol` declares what a service speaks, and `retry.retryOn` is checked against it: a token of
 * the other protocol would be ignored by the classifier, so it is a config error that says so.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GRPC_RETRY_ON_CODES, HTTP_RETRY_ON_KEYWORDS } from '../../src/config/retry-on.js';
import { validateMeshConfig } from '../../src/config/validate.js';
import { assertIssue, configError } from './config-error.js';

function service(cfg: Record<string, unknown>): unknown {
  return { services: { users: { endpoints: ['10.0.0.1:80'], ...cfg } } };
}

const HTTP_LIST = 'connect-failure, reset, timeout, gateway-error, 5xx, or an HTTP status such as "503"';
const GRPC_LIST = `a gRPC status name: ${GRPC_RETRY_ON_CODES.join(', ')}`;

describe('service protocol', () => {
  it('defaults to http and is kept in the resolved config', () => {
    assert.equal(validateMeshConfig(service({})).services.get('users')!.protocol, 'http');
    assert.equal(validateMeshConfig(service({ protocol: 'grpc' })).services.get('users')!.protocol, 'grpc');
  });

  it('rejects other protocols with a suggestion', () => {
    assertIssue(
      () => validateMeshConfig(service({ protocol: 'gprc' })),
      'services.users.protocol',
      'expected one of "http", "grpc", got "gprc" (did you mean "grpc"?)',
    );
    configError(() => validateMeshConfig(service({ protocol: 'HTTP/2' })));
  });

  it('accepts each protocol its own tokens', () => {
    const http = validateMeshConfig(service({ retry: { retryOn: [...HTTP_RETRY_ON_KEYWORDS, '429', '503'] } }));
    assert.deepEqual(http.services.get('users')!.retry.retryOn, [...HTTP_RETRY_ON_KEYWORDS, '429', '503']);
    const grpc = validateMeshConfig(service({ protocol: 'grpc', retry: { retryOn: [...GRPC_RETRY_ON_CODES] } }));
    assert.deepEqual(grpc.services.get('users')!.retry.retryOn, GRPC_RETRY_ON_CODES);
  });

  it('refuses a gRPC status in an http service, naming the token and the protocol', () => {
    assertIssue(
      () => validateMeshConfig(service({ retry: { retryOn: ['reset', 'UNAVAILABLE'] } })),
      'services.users.retry.retryOn[1]',
      `"UNAVAILABLE" is a gRPC status, but service "users" has protocol "http"; expected ${HTTP_LIST}, ` +
        'or set protocol: "grpc" if the service speaks gRPC',
    );
  });

  it('refuses HTTP tokens in a grpc service, listing the gRPC ones', () => {
    for (const token of ['5xx', 'gateway-error', '503', 'reset']) {
      assertIssue(
        () => validateMeshConfig(service({ protocol: 'grpc', retry: { retryOn: [token] } })),
        'services.users.retry.retryOn[0]',
        `"${token}" is an HTTP retry condition, but service "users" has protocol "grpc"; expected ${GRPC_LIST}, ` +
          'or set protocol: "http" if the service speaks HTTP',
      );
    }
  });

  it('suggests the close token of the service protocol', () => {
    assertIssue(
      () => validateMeshConfig(service({ protocol: 'grpc', retry: { retryOn: ['UNAVAILBLE'] } })),
      'services.users.retry.retryOn[0]',
      `expected ${GRPC_LIST} (service "users" has protocol "grpc"), got "UNAVAILBLE" (did you mean "UNAVAILABLE"?)`,
    );
    assertIssue(
      () => validateMeshConfig(service({ retry: { retryOn: ['gateway-errors'] } })),
      'services.users.retry.retryOn[0]',
      `expected ${HTTP_LIST} (service "users" has protocol "http"), got "gateway-errors" (did you mean "gateway-error"?)`,
    );
  });

  it('refuses OK in a grpc service: a success is never retried', () => {
    const err = configError(() => validateMeshConfig(service({ protocol: 'grpc', retry: { retryOn: ['OK'] } })));
    assert.equal(err.path, 'services.users.retry.retryOn[0]');
    assert.match(err.message, /OK is a success and is never retried/);
  });

  it('checks tokens against both vocabularies when the protocol itself is invalid, without a second issue', () => {
    const err = configError(() =>
      validateMeshConfig(service({ protocol: 'smtp', retry: { retryOn: ['UNAVAILABLE', '5xx', 'nope'] } })),
    );
    assert.deepEqual(
      err.issues.map((i) => i.path),
      ['services.users.protocol', 'services.users.retry.retryOn[2]'],
    );
  });
});
