// meshlet-timeout (grpc-timeout syntax) and meshlet-caller: what is accepted, what is ignored.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatTimeoutHeader, parseCallerHeader, parseTimeoutHeader } from '../../src/inbound/headers.js';

describe('meshlet-timeout', () => {
  it('reads every unit of the grpc-timeout syntax', () => {
    assert.equal(parseTimeoutHeader('300m'), 300);
    assert.equal(parseTimeoutHeader('2S'), 2000);
    assert.equal(parseTimeoutHeader('1M'), 60_000);
    assert.equal(parseTimeoutHeader('1H'), 3_600_000);
    assert.equal(parseTimeoutHeader('1500u'), 1.5);
    assert.equal(parseTimeoutHeader('2000000n'), 2);
    assert.equal(parseTimeoutHeader('0m'), 0);
    assert.equal(parseTimeoutHeader('99999999S'), 99_999_999_000);
    assert.equal(parseTimeoutHeader(['250m', '9S']), 250, 'a repeated header: the first');
  });

  it('ignores anything malformed (the request then has no inbound deadline)', () => {
    for (const bad of [
      undefined,
      '',
      'm',
      '300',
      '-1m',
      '+1m',
      '1e3m',
      '10x',
      '1.5S',
      ' 1m',
      '123456789m',
      '0x10m',
      '１m',
      '1__proto__',
      'constructor',
      '1toString',
      [],
    ]) {
      assert.equal(parseTimeoutHeader(bad as string | string[] | undefined), undefined, `${JSON.stringify(bad)}`);
    }
  });

  it('never throws and never returns a negative or non-finite budget, for any string', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), (s) => {
        const v = parseTimeoutHeader(s);
        return v === undefined || (Number.isFinite(v) && v >= 0);
      }),
      { numRuns: 2000 },
    );
  });

  it('formats whole ms rounded up, at least 1m, in seconds past 8 digits, and round-trips', () => {
    assert.equal(formatTimeoutHeader(299.2), '300m');
    assert.equal(formatTimeoutHeader(0.2), '1m');
    assert.equal(formatTimeoutHeader(0), '1m');
    assert.equal(formatTimeoutHeader(-5), '1m');
    assert.equal(formatTimeoutHeader(Number.NaN), '1m');
    assert.equal(formatTimeoutHeader(99_999_999), '99999999m');
    assert.equal(formatTimeoutHeader(100_000_000), '100000S');
    assert.equal(formatTimeoutHeader(Number.POSITIVE_INFINITY), '99999999S');
    for (const ms of [1, 15_000, 2 ** 31 - 1]) assert.ok(parseTimeoutHeader(formatTimeoutHeader(ms))! >= ms);
  });
});

describe('meshlet-caller', () => {
  it('keeps a valid service name and drops anything else', () => {
    assert.equal(parseCallerHeader('orders'), 'orders');
    assert.equal(parseCallerHeader(['web', 'x']), 'web');
    for (const bad of [undefined, '', 'Orders!', 'a b', 'x'.repeat(254), 'evil\r\nx', '__proto__', '-a']) {
      assert.equal(parseCallerHeader(bad), undefined, JSON.stringify(bad));
    }
  });
});
