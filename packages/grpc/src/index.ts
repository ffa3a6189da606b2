export { meshGrpcOptions } from './client/options.js';
export { GrpcClassifier, DEFAULT_GRPC_RETRY_ON } from './client/classifier.js';
export { type MeshStatusObject } from './client/status.js';
export { MESHLET_SCHEME } from './client/target.js';
export { meshServerInterceptors, type MeshServerInterceptorsOptions } from './server/interceptors.js';
export { installGrpcZeroCode, grpcJsLocation, GrpcZeroCodeError, type GrpcZeroCode } from './global.js';
