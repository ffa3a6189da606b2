import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashString, hashUint32 } from '../../src/balancer/hash.js';

/** Plain murmur3 x86_32 over a byte array, written from the reference, to cross-check. */
function referenceMurmur3(bytes: Uint8Array, seed: number): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed >>> 0;
  const blocks = bytes.length >> 2;
  for (let b = 0; b < blocks; b++) {
    const o = b * 4;
    let k = bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16) | (bytes[o + 3] << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = blocks * 4;
  const rest = bytes.length & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= bytes[tail + 2] << 16;
    if (rest >= 2) k ^= bytes[tail + 1] << 8;
    k ^= bytes[tail];
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

test('hashString matches published murmur3_32 vectors', () => {
  assert.equal(hashString(''), 0);
  assert.equal(hashString('', 1), 0x514e28b7);
  assert.equal(hashString('', 0xffffffff), 0x81f16f39);
  assert.equal(hashString('hello'), 613153351);
  assert.equal(hashString('test'), 0xba6bd213);
  assert.equal(hashString('abc'), 0xb3dd93fa);
  assert.equal(hashString('Hello, world!'), 0xc0363e43);
  assert.equal(hashString('The quick brown fox jumps over the lazy dog'), 0x2e4ff723);
  assert.equal(hashString('aaaa', 0x9747b28c), 0x5a97808a);
});

test('hashString hashes the UTF-8 bytes, lone surrogates as U+FFFD', () => {
  const samples = ['é', '€', '😀', 'ab😀cd€é', '\ud800', 'x\udc00y', '\ud83d', 'ü'.repeat(7), '日本語のキー'];
  for (const s of samples) {
    for (const seed of [0, 42, 0xdeadbeef]) {
      assert.equal(
        hashString(s, seed),
        referenceMurmur3(Buffer.from(s, 'utf8'), seed),
        `${JSON.stringify(s)} seed ${seed}`,
      );
    }
  }
});

test('hashString agrees with the reference on every tail length and mixed text', () => {
  const alphabet = ['a', 'Z', '0', '/', 'é', '€', '😀', '\u07ff', '\u0800', '\uffff'];
  let state = 12345;
  for (let len = 0; len < 40; len++) {
    let s = '';
    for (let i = 0; i < len; i++) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      s += alphabet[state % alphabet.length];
    }
    assert.equal(hashString(s, len), referenceMurmur3(Buffer.from(s, 'utf8'), len), JSON.stringify(s));
  }
});

test('hashString is deterministic, unsigned and seed-sensitive', () => {
  const h = hashString('users/42');
  assert.equal(hashString('users/42'), h);
  assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff);
  assert.notEqual(hashString('users/42', 1), h);
  assert.notEqual(hashString('users/43'), h);
});

test('hashUint32 is murmur3 of the integer as 4 little-endian bytes', () => {
  for (const [value, seed] of [
    [0, 0],
    [1, 0],
    [0x64636261, 0],
    [0xffffffff, 7],
    [123456789, 0xcafebabe],
  ]) {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, value, true);
    assert.equal(hashUint32(value, seed), referenceMurmur3(bytes, seed));
  }
  assert.equal(hashUint32(0x64636261), hashString('abcd'));
});
