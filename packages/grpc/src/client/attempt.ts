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
import type { Endpoint } from '@meshlet/core';
import type { AttemptSink } from './protocol-types.js';
import type { LowLevelCall } from './grpc-types.js';
import type { MeshGrpcCall } from './call.js';

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

  constructor(
    readonly owner: MeshGrpcCall,
    readonly endpoint: Endpoint,
    private sink: AttemptSink | undefined,
  ) {}

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
