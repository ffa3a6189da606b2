/**
 * Request bodies: the replay rule and the caller-source tracker.
 *
 * Replay rule (the same for `fetch` and `undici.request`): a body of at most
 * `REPLAY_BUFFER_LIMIT` (64 KiB) — a string, Buffer or Uint8Array, or a stream, iterable or
 * Blob whose `content-length` (or size) says so, which is what fetch's bodies are — is held
 * in memory and may be replayed on a retry. Anything larger, or a stream of unknown length,
 * is sent once and never retried. Streams are read into memory inside the call (the
 * protocol's `prepare` step), so the call's deadline and the caller's abort hold while a
 * body is being read.
 *
 * `CallerBody` wraps a stream that is sent unbuffered. It records whether the attempt is
 * waiting on the caller's source (rather than on the network) and the source's own error,
 * so a body that fails or stalls is reported as the caller's fault, never the endpoint's.
 */

/** Largest body held in memory for replay on retry. */
export const REPLAY_BUFFER_LIMIT = 64 * 1024;

/** What a request's body is, for the replay rule. */
export const BODY_NONE = 0;
/** A string or bytes of at most the replay limit: sent as is, replayable. */
export const BODY_REPLAYABLE = 1;
/** A stream (or Blob) announced at most the replay limit: read into memory by `prepare`. */
export const BODY_TO_BUFFER = 2;
/** Larger than the limit, or of unknown length: sent once. */
export const BODY_ONCE = 3;

/** Classifies a body for the replay rule; `contentLength` is the header's value (NaN when absent). */
export function bodyKind(body: unknown, contentLength: number): number {
  if (body == null) return BODY_NONE;
  if (typeof body === 'string') {
    // A UTF-8 byte is at most 3 per UTF-16 unit; count exactly only when it matters.
    if (body.length > REPLAY_BUFFER_LIMIT) return BODY_ONCE;
    if (body.length * 3 <= REPLAY_BUFFER_LIMIT) return BODY_REPLAYABLE;
    return Buffer.byteLength(body) <= REPLAY_BUFFER_LIMIT ? BODY_REPLAYABLE : BODY_ONCE;
  }
  if (body instanceof Uint8Array) return body.byteLength <= REPLAY_BUFFER_LIMIT ? BODY_REPLAYABLE : BODY_ONCE;
  if (isBlob(body)) return body.size <= REPLAY_BUFFER_LIMIT ? BODY_TO_BUFFER : BODY_ONCE;
  if (isFormData(body)) return BODY_ONCE; // undici encodes it (with a boundary of its own): sent once
  if (isIterable(body)) {
    return contentLength >= 0 && contentLength <= REPLAY_BUFFER_LIMIT ? BODY_TO_BUFFER : BODY_ONCE;
  }
  return BODY_ONCE; // whatever else undici accepts or refuses: sent once
}

/** Is this a stream or iterable the mesh wraps (not a FormData, which undici encodes itself)? */
export function isStreamBody(body: unknown): body is AsyncIterable<unknown> | Iterable<unknown> {
  return body != null && typeof body === 'object' && !ArrayBuffer.isView(body) && !isFormData(body) && isIterable(body);
}

function isFormData(body: unknown): boolean {
  return (body as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag] === 'FormData';
}

export function isIterable(body: unknown): body is AsyncIterable<unknown> | Iterable<unknown> {
  const b = body as { [Symbol.asyncIterator]?: unknown; [Symbol.iterator]?: unknown };
  return typeof b[Symbol.asyncIterator] === 'function' || typeof b[Symbol.iterator] === 'function';
}

function isBlob(body: unknown): body is Blob {
  return typeof Blob !== 'undefined' && body instanceof Blob;
}

function toBuffer(value: unknown): Buffer {
  if (typeof value === 'string') return Buffer.from(value);
  if (Buffer.isBuffer(value)) return value;
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  throw new TypeError(`request body chunks must be strings or bytes, got ${typeof value}`);
}

function iteratorOf(body: AsyncIterable<unknown> | Iterable<unknown>): AsyncIterator<unknown> | Iterator<unknown> {
  const b = body as AsyncIterable<unknown> & Iterable<unknown>;
  return typeof b[Symbol.asyncIterator] === 'function' ? b[Symbol.asyncIterator]() : b[Symbol.iterator]();
}

/**
 * Reads a body announced at most the replay limit into one Buffer. Resolves `[buffer]` when
 * it ended within the limit; when it turns out longer than announced, resolves
 * `[undefined, rest]`: what was read followed by the rest, as a `CallerBody` (sent once).
 * `cancel` is set to a function that abandons the read and releases the source.
 */
export async function readBody(
  body: AsyncIterable<unknown> | Iterable<unknown> | Blob,
  holder: { cancel: ((reason: unknown) => void) | undefined },
): Promise<[Buffer] | [undefined, CallerBody]> {
  if (isBlob(body)) return [Buffer.from(await body.arrayBuffer())];
  const it = iteratorOf(body);
  holder.cancel = () => {
    try {
      const r = it.return?.();
      if (r !== undefined && typeof (r as Promise<unknown>).then === 'function')
        (r as Promise<unknown>).catch(() => {});
    } catch {
      // the source refused to stop; nothing else to release
    }
  };
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await it.next();
    if (done) return [chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)];
    const chunk = toBuffer(value);
    chunks.push(chunk);
    size += chunk.length;
    if (size > REPLAY_BUFFER_LIMIT) return [undefined, new CallerBody(it, chunks, body)];
  }
}

/**
 * An async iterator over the caller's body stream that knows whose turn it is: `waiting`
 * is true while the attempt waits for the caller's next chunk, `failed` once the source
 * threw (its error in `sourceError`). `cancel` ends a pending read (undici leaves a stalled
 * async iterable to its owner) and releases the source. One promise per chunk, only for
 * bodies sent unbuffered.
 */
export class CallerBody implements AsyncIterableIterator<Buffer | Uint8Array | string> {
  waiting = false;
  failed = false;
  sourceError: unknown = undefined;
  private cancelled: unknown = undefined;
  private rejectPending: ((reason: unknown) => void) | undefined = undefined;
  private prefix: Buffer[] | undefined;

  constructor(
    private readonly it: AsyncIterator<unknown> | Iterator<unknown>,
    prefix?: Buffer[],
    /** The source object, destroyed on release when it is a stream (its iterator cannot stop a pending read). */
    private readonly source?: unknown,
  ) {
    this.prefix = prefix;
  }

  /** Wraps a stream, async iterable or iterable body. */
  static of(body: AsyncIterable<unknown> | Iterable<unknown>): CallerBody {
    return new CallerBody(iteratorOf(body), undefined, body);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Buffer | Uint8Array | string>> {
    if (this.cancelled !== undefined) return Promise.reject(this.cancelled);
    const prefix = this.prefix;
    if (prefix !== undefined) {
      const chunk = prefix.shift();
      if (prefix.length === 0) this.prefix = undefined;
      if (chunk !== undefined) return Promise.resolve({ value: chunk, done: false });
    }
    this.waiting = true;
    return new Promise((resolve, reject) => {
      this.rejectPending = reject;
      let step: Promise<IteratorResult<unknown>> | IteratorResult<unknown>;
      try {
        step = this.it.next();
      } catch (err) {
        this.sourceFailed(err, reject);
        return;
      }
      Promise.resolve(step).then(
        (r) => {
          this.waiting = false;
          this.rejectPending = undefined;
          resolve(r as IteratorResult<Buffer | Uint8Array | string>);
        },
        (err) => this.sourceFailed(err, reject),
      );
    });
  }

  private sourceFailed(err: unknown, reject: (reason: unknown) => void): void {
    this.waiting = false;
    this.rejectPending = undefined;
    if (this.cancelled === undefined) {
      this.failed = true;
      this.sourceError = err;
    }
    reject(err);
  }

  return(): Promise<IteratorResult<Buffer | Uint8Array | string>> {
    this.release();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Abandons the body: a pending read rejects with `reason` and the source is released. */
  cancel(reason: unknown): void {
    if (this.cancelled !== undefined) return;
    this.cancelled = reason;
    const reject = this.rejectPending;
    this.rejectPending = undefined;
    this.waiting = false;
    reject?.(reason);
    this.release();
  }

  private release(): void {
    releaseSource(this.it, this.source);
  }
}

/** Stops a body source: a stream is destroyed (as undici does with the bodies it owns), else its iterator returns. */
function releaseSource(it: AsyncIterator<unknown> | Iterator<unknown>, source: unknown): void {
  const destroy = (source as { destroy?: unknown } | undefined)?.destroy;
  if (typeof destroy === 'function') {
    destroy.call(source);
    return;
  }
  try {
    const r = it.return?.();
    if (r !== undefined && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).catch(() => {});
  } catch {
    // the source refused to stop
  }
}
