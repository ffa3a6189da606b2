import { Module, type DynamicModule } from '@nestjs/common';
import type { MeshOptions } from '@meshlet/core';
import { MeshModule } from '@meshlet/http/nest';
import { OrdersController, SERVICE_NAME } from './orders.controller.ts';

/**
 * The orders app. `MeshModule.forRoot(options)` creates the mesh from `createMesh` options (so it
 * also closes it on application shutdown), provides it and the mesh fetch through DI (`MESH`,
 * `MESH_FETCH`), and installs the inbound middleware on every route. The options are read from
 * the environment before Nest starts (main.ts), so a bad variable or file stops the process with
 * one line naming it; with a Nest config service, `MeshModule.forRootAsync({ imports, inject,
 * useFactory })` does the same from injected settings.
 */
@Module({})
export class OrdersModule {
  static register(meshOptions: MeshOptions): DynamicModule {
    return {
      module: OrdersModule,
      imports: [MeshModule.forRoot(meshOptions)],
      controllers: [OrdersController],
      providers: [{ provide: SERVICE_NAME, useValue: meshOptions.service ?? 'orders' }],
    };
  }
}
