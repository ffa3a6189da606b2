import { Module } from '@nestjs/common';
import { MeshModule } from '@meshlet/http/nest';
import { meshOptionsFromEnv } from '../shared/mesh-env.ts';
import { OrdersController, SERVICE_NAME } from './orders.controller.ts';

/**
 * The orders app. `MeshModule.forRootAsync` builds the mesh from the environment (the module
 * creates it, so it closes it on application shutdown), provides it and the mesh fetch through DI
 * (`MESH`, `MESH_FETCH`), and installs the inbound middleware on every route.
 */
@Module({
  imports: [
    MeshModule.forRootAsync({
      useFactory: () => meshOptionsFromEnv('orders', new URL('./orders.mesh.yaml', import.meta.url)),
    }),
  ],
  controllers: [OrdersController],
  providers: [{ provide: SERVICE_NAME, useValue: process.env.MESHLET_SERVICE || 'orders' }],
})
export class OrdersModule {}
