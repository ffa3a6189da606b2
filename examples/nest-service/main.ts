/**
 * The orders service (NestJS 12 on Express), the middle hop of the example chain
 * gateway → orders → users: `npm run -w @meshlet/examples nest-service` (PORT, default 3002).
 *
 * Runs under tsx with this folder's tsconfig.json (`experimentalDecorators`); the npm script starts
 * it from this folder so tsx finds that file.
 */
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import type { Mesh } from '@meshlet/core';
import { MESH } from '@meshlet/http/nest';
import { fail, log, meshOptionsFromEnv, portFromEnv, startAdminFromEnv } from '../shared/mesh-env.ts';
import { OrdersModule } from './orders.module.ts';

const SERVICE = process.env.MESHLET_SERVICE || 'orders';

const port = (() => {
  try {
    return portFromEnv('PORT', 3002);
  } catch (err) {
    fail(err);
  }
})();
const meshOptions = await meshOptionsFromEnv('orders', new URL('./orders.mesh.yaml', import.meta.url)).catch(fail);
const app = await NestFactory.create(OrdersModule.register(meshOptions), { logger: ['error', 'warn'] }).catch(fail);
// SIGTERM/SIGINT close the app: MeshModule closes the mesh after the calls in flight.
app.enableShutdownHooks();
const admin = await startAdminFromEnv(app.get<Mesh>(MESH)).catch(fail);
await app.listen(port, process.env.HOST || '127.0.0.1').catch(fail);
const listening = app.getHttpServer().address() as AddressInfo;
log({ service: SERVICE, event: 'listening', port: listening.port, adminPort: admin?.address.port ?? null });
