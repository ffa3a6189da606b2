/**
 * grpc-js's low-level call interface, which `ChannelInterface.createCall` returns and the mesh
 * both implements (`MeshGrpcCall`) and drives (each attempt's call on an endpoint's channel).
 * grpc-js exports the channel interface but not the call's, so it is named from it here.
 */
import type { ChannelInterface } from '@grpc/grpc-js';

export type LowLevelCall = ReturnType<ChannelInterface['createCall']>;
export type MessageContext = Parameters<LowLevelCall['sendMessageWithContext']>[0];
export type AuthContext = ReturnType<LowLevelCall['getAuthContext']>;
export type Deadline = Parameters<ChannelInterface['createCall']>[1];
export type ParentCall = Parameters<ChannelInterface['createCall']>[3];
