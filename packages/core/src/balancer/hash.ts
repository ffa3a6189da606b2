/**
 * MurmurHash3 x86_32 over the UTF-8 bytes of a string, computed straight from its UTF-16 code
 * units so hashing a request key allocates nothing. UTF-8 (not UTF-16) so keys hash the same as
 * in other languages' murmur3 (`murmur3_32('hello', 0) = 613153351`); lone surrogates encode as
 * U+FFFD, like `TextEncoder` and `Buffer.from(s)`.
 *
 * Ordering: pure functions, no state between calls; used by ring-hash to place virtual nodes and
 * by callers to turn a request key into `PickContext.hash`.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

// Streaming state for one hashString call. Module-level (not a closure) so the byte feeder
// allocates nothing; safe because hashing is synchronous and never re-entered.
let h = 0;
let k = 0;
let fill = 0;
let length = 0;

function mixK(k1: number): number {
  k1 = Math.imul(k1, C1);
  k1 = (k1 << 15) | (k1 >>> 17);
  return Math.imul(k1, C2);
}

function mixH(h1: number, k1: number): number {
  h1 ^= mixK(k1);
  h1 = (h1 << 13) | (h1 >>> 19);
  return (Math.imul(h1, 5) + 0xe6546b64) | 0;
}

function fmix(h1: number): number {
  h1 ^= h1 >>> 16;
  h1 = Math.imul(h1, 0x85ebca6b);
  h1 ^= h1 >>> 13;
  h1 = Math.imul(h1, 0xc2b2ae35);
  h1 ^= h1 >>> 16;
  return h1 >>> 0;
}

function feed(byte: number): void {
  k |= byte << (fill << 3);
  length++;
  if (++fill === 4) {
    h = mixH(h, k);
    k = 0;
    fill = 0;
  }
}

/** 32-bit unsigned MurmurHash3 (x86_32) of `s` encoded as UTF-8. `seed` defaults to 0. */
export function hashString(s: string, seed = 0): number {
  h = seed | 0;
  k = 0;
  fill = 0;
  length = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      feed(c);
    } else if (c < 0x800) {
      feed(0xc0 | (c >> 6));
      feed(0x80 | (c & 0x3f));
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          feed(0xf0 | (c >> 18));
          feed(0x80 | ((c >> 12) & 0x3f));
          feed(0x80 | ((c >> 6) & 0x3f));
          feed(0x80 | (c & 0x3f));
          continue;
        }
        c = 0xfffd;
      }
      feed(0xe0 | (c >> 12));
      feed(0x80 | ((c >> 6) & 0x3f));
      feed(0x80 | (c & 0x3f));
    }
  }
  let h1 = h;
  if (fill > 0) h1 ^= mixK(k);
  return fmix(h1 ^ length);
}

/**
 * 32-bit unsigned MurmurHash3 (x86_32) of one 32-bit integer as 4 little-endian bytes: the same
 * value `hashString` would give for those bytes. Used to place ring-hash virtual nodes cheaply.
 */
export function hashUint32(value: number, seed = 0): number {
  return fmix(mixH(seed | 0, value | 0) ^ 4);
}
