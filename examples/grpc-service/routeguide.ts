/**
 * routeguide.proto loaded with @grpc/proto-loader at run time (no code generation), and the
 * TypeScript shape of its messages and client. Shared by server.ts and client.ts.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

export interface Point {
  latitude: number;
  longitude: number;
}

export interface Rectangle {
  lo: Point;
  hi: Point;
}

export interface Feature {
  name: string;
  location: Point;
}

/** The client methods this example calls (a generated client has the same shape). */
export interface RouteGuideClient extends grpc.Client {
  getFeature(
    point: Point,
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, feature?: Feature) => void,
  ): grpc.ClientUnaryCall;
  listFeatures(rectangle: Rectangle, options?: grpc.CallOptions): grpc.ClientReadableStream<Feature>;
}

export interface RouteGuideClientConstructor {
  new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions): RouteGuideClient;
  service: grpc.ServiceDefinition;
}

const definition = protoLoader.loadSync(fileURLToPath(new URL('./routeguide.proto', import.meta.url)), {
  // `defaults: true`: a message's unset fields read as 0 / '' rather than undefined.
  defaults: true,
});
const routeguide = grpc.loadPackageDefinition(definition).routeguide as grpc.GrpcObject;

/** `new RouteGuide('meshlet:///routeguide', credentials, meshGrpcOptions(mesh))`. */
export const RouteGuide = routeguide.RouteGuide as unknown as RouteGuideClientConstructor;
