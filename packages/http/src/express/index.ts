/**
 * `@meshlet/http/express`: the inbound side of the mesh for Express 4 and 5 —
 * `app.use(meshMiddleware(mesh))`.
 */
export { meshMiddleware, type MeshMiddleware, type MeshMiddlewareOptions } from './middleware.js';
