export {
  createMeshDispatcher,
  MeshDispatcher,
  REPLAY_BUFFER_LIMIT,
  validateDispatcherOptions,
  type MeshDispatcherOptions,
} from './dispatcher.js';
export { createMeshFetch, type MeshFetch } from './fetch.js';
export { createHttpProtocol } from './protocol.js';
export { HttpClassifier, DEFAULT_RETRY_ON } from './classifier.js';
export { HttpRequest } from './request.js';
export { HttpAttempt, ResponseBodyDeadlineError } from './attempt.js';
export { MeshUrlResolver, type UnknownHosts, type UrlVerdict } from './url.js';
