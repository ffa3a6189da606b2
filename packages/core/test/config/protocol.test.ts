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
      'expected "http", "grpc", or a list of them such as ["http", "grpc"], got "gprc" (did you mean "grpc"?)',
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
        'or set protocol: "grpc" if the service speaks gRPC (or protocol: ["http", "grpc"] if it speaks both)',
    );
  });

  it('refuses HTTP tokens in a grpc service, listing the gRPC ones', () => {
    for (const token of ['5xx', 'gateway-error', '503', 'reset']) {
      assertIssue(
        () => validateMeshConfig(service({ protocol: 'grpc', retry: { retryOn: [token] } })),
        'services.users.retry.retryOn[0]',
        `"${token}" is an HTTP retry condition, but service "users" has protocol "grpc"; expected ${GRPC_LIST}, ` +
          'or set protocol: "http" if the service speaks HTTP (or protocol: ["http", "grpc"] if it speaks both)',
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

describe('a service speaking both protocols', () => {
  it('resolves the list, and keeps the single form as written', () => {
    const both = validateMeshConfig(service({ protocol: ['http', 'grpc'] })).services.get('users')!;
    assert.deepEqual(both.protocols, ['http', 'grpc']);
    assert.deepEqual(both.protocol, ['http', 'grpc']);
    const one = validateMeshConfig(service({ protocol: ['grpc'] })).services.get('users')!;
    assert.deepEqual(one.protocols, ['grpc']);
    assert.deepEqual(validateMeshConfig(service({})).services.get('users')!.protocols, ['http']);
  });

  it('accepts tokens of either protocol in retry.retryOn', () => {
    const both = validateMeshConfig(
      service({
        protocol: ['grpc', 'http'],
        retry: { retryOn: ['reset', 'UNAVAILABLE', '503', 'RESOURCE_EXHAUSTED'] },
      }),
    ).services.get('users')!;
    assert.deepEqual(both.retry.retryOn, ['reset', 'UNAVAILABLE', '503', 'RESOURCE_EXHAUSTED']);
  });

  it('refuses a token of neither, listing both vocabularies and suggesting from both', () => {
    assertIssue(
      () => validateMeshConfig(service({ protocol: ['http', 'grpc'], retry: { retryOn: ['reset', 'UNAVAILBLE'] } })),
      'services.users.retry.retryOn[1]',
      `expected ${HTTP_LIST} (HTTP), or ${GRPC_LIST} (gRPC) (service "users" has protocol ["http", "grpc"]), ` +
        'got "UNAVAILBLE" (did you mean "UNAVAILABLE"?)',
    );
  });

  it('refuses an empty list, a repeated protocol and an unknown one, naming the item', () => {
    assertIssue(
      () => validateMeshConfig(service({ protocol: [] })),
      'services.users.protocol',
      'expected a non-empty list of protocols without repeats, such as ["http", "grpc"], got an empty array',
    );
    assertIssue(
      () => validateMeshConfig(service({ protocol: ['grpc', 'grpc'] })),
      'services.users.protocol[1]',
      'duplicate protocol "grpc" (already services.users.protocol[0]); list each protocol once',
    );
    assertIssue(
      () => validateMeshConfig(service({ protocol: ['http', 'gprc'] })),
      'services.users.protocol[1]',
      'expected one of "http", "grpc", got "gprc" (did you mean "grpc"?)',
    );
    assertIssue(
      () => validateMeshConfig(service({ protocol: 7 })),
      'services.users.protocol',
      'expected "http", "grpc", or a list of them such as ["http", "grpc"], got 7',
    );
  });

  it('with an invalid list, checks retryOn against both vocabularies without a second issue', () => {
    const err = configError(() =>
      validateMeshConfig(service({ protocol: ['http', 'http'], retry: { retryOn: ['UNAVAILABLE', '5xx'] } })),
    );
    assert.deepEqual(
      err.issues.map((i) => i.path),
      ['services.users.protocol[1]'],
    );
  });
});
