/**
 * One attempt of a gRPC call on one endpoint: a plain grpc-js call on the endpoint's channel,
 * whose listener this object is. Until the attempt commits (its first response message, or its
 * final status) it holds what arrives and reports the outcome to the engine once; after, the
 * owning call forwards everything straight to the caller.
 *
 * Also the attempt's abort handler (`handleAbort`): when the engine cuts it (per-try timeout,
 * deadline, the caller's cancel, the mesh closing) the grpc-js call is cancelled, so the
 * cancellation reaches the server (RST_STREAM), and the engine is told at once.
 */
import { status as Status, type InterceptingListener, type Metadata, type StatusObject } from '@grpc/grpc-js';
import type { Endpoint, AttemptSink } from '@meshlet/core';
import type { LowLevelCall } from './grpc-types.js';
import type { MeshGrpcCall } from './call.js';

interface QueuedWrite {
  message: Buffer;
  flags: number | undefined;
  callback: ((error?: Error | null) => void) | undefined;
}

export class EndpointAttempt implements InterceptingListener {
  /** The endpoint's grpc-js call; set right after construction. */
  call!: LowLevelCall;
  /** Response headers, held until the attempt commits. */
  headers: Metadata | undefined = undefined;
  /** The first response message (it committed the attempt). */
  message: Buffer | undefined = undefined;
  /** The final status, when it arrived before any message. */
  status: StatusObject | undefined = undefined;
  /** The engine has been told this attempt's outcome. */
  reported = false;
  /** The grpc-js call has ended (status received) or was cancelled by us. */
  ended = false;
  /** A read has been asked of the grpc-js call (before commit, at most one). */
  readRequested = false;
  /** The engine cut it: anything arriving later is ignored. */
  cut = false;

  /**
   * Messages waiting for the previous write to complete: a grpc-js call holds one pending
   * message until it is connected, so the next is sent only from the previous one's callback.
   */
  private queue: QueuedWrite[] | undefined = undefined;
  private writing = false;
  private halfClosePending = false;
  private readonly written: (error?: Error | null) => void;
  private writeCallback: ((error?: Error | null) => void) | undefined = undefined;

  constructor(
    readonly owner: MeshGrpcCall,
    readonly endpoint: Endpoint,
    private sink: AttemptSink<EndpointAttempt> | undefined,
  ) {
    this.written = (error) => this.onWritten(error);
  }

  /** Sends a request message in order, one at a time; `callback` when it has been written. */
  write(message: Buffer, flags: number | undefined, callback: ((error?: Error | null) => void) | undefined): void {
    if (this.writing) {
      (this.queue ??= []).push({ message, flags, callback });
      return;
    }
    this.writing = true;
    this.writeCallback = callback;
    this.call.sendMessageWithContext({ flags, callback: this.written }, message);
  }

  /** Half-closes after the messages still queued. */
  halfClose(): void {
    if (this.queue !== undefined && this.queue.length > 0) this.halfClosePending = true;
    else this.call.halfClose();
  }

  private onWritten(error?: Error | null): void {
    const cb = this.writeCallback;
    this.writeCallback = undefined;
    const next = this.queue?.shift();
    if (next !== undefined && !this.ended) {
      this.writeCallback = next.callback;
      this.call.sendMessageWithContext({ flags: next.flags, callback: this.written }, next.message);
    } else {
      this.writing = false;
      if (next !== undefined) {
        // The call ended: release what waited on it.
        next.callback?.(error);
        for (const q of this.queue!) q.callback?.(error);
        this.queue = undefined;
      }
      if (this.halfClosePending && !this.ended) {
        this.halfClosePending = false;
        this.call.halfClose();
      }
    }
    cb?.(error);
  }

  private report(err: unknown): void {
    if (this.reported) return;
    this.reported = true;
    const sink = this.sink!;
    this.sink = undefined;
    if (err === undefined) sink.attemptResolved(this);
    else sink.attemptRejected(err);
  }

  onReceiveMetadata(metadata: Metadata): void {
    if (this.cut) return;
    if (this.owner.live === this) this.owner.forwardMetadata(metadata);
    else this.headers = metadata;
  }

  onReceiveMessage(message: Buffer): void {
    if (this.cut) return;
    if (this.owner.live === this) {
      this.owner.forwardMessage(message);
      return;
    }
    if (this.reported) return;
    this.message = message;
    this.report(undefined);
  }

  onReceiveStatus(status: StatusObject): void {
    this.ended = true;
    if (this.cut) return;
    if (this.owner.live === this) {
      this.owner.finish(status, this.endpoint);
      return;
    }
    if (this.reported) return;
    this.status = status;
    this.report(undefined);
  }

  /** The engine cut the attempt with `reason`. */
  handleAbort(reason: unknown): void {
    if (this.reported || this.owner.live === this) return;
    this.cut = true;
    this.cancel('meshlet: attempt cut: ' + (reason instanceof Error ? reason.message : String(reason)));
    this.report(reason);
  }

  /** Cancels the grpc-js call if it is still running (a discarded or cut attempt). */
  cancel(details: string): void {
    if (this.ended) return;
    this.ended = true;
    this.cut = true;
    this.call.cancelWithStatus(Status.CANCELLED, details);
  }
}
