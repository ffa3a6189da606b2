/** `meshlet control`: runs the server until SIGTERM / SIGINT, then stops it gracefully. */
import * as grpc from '@grpc/grpc-js';
import { MeshError } from '@meshlet/core';
import { pino } from 'pino';
import type { Output } from './commands.js';
import { createControlServer } from './server.js';

export interface RunControlOptions {
  configPath: string;
  port: number;
  adminPort: number;
  host: string;
  logLevel: string;
}

/** Resolves with the exit code once the server has stopped (0 after a signal, 1 if it could not start). */
export async function runControl(opts: RunControlOptions, out: Output): Promise<number> {
  let logger;
  try {
    logger = pino({ name: 'meshlet-control', level: opts.logLevel });
  } catch (err) {
    out.stderr(`meshlet control: --log-level: ${(err as Error).message}`);
    return 2;
  }
  // grpc-js logs its own errors to stderr as plain text; keep the process's output JSON lines.
  grpc.setLogger({
    error: (...args: unknown[]) => logger.warn({ event: 'grpc', detail: args.join(' ') }, 'grpc-js'),
    info: (...args: unknown[]) => logger.debug({ event: 'grpc', detail: args.join(' ') }, 'grpc-js'),
    debug: (...args: unknown[]) => logger.debug({ event: 'grpc', detail: args.join(' ') }, 'grpc-js'),
  });
  const server = createControlServer({
    configPath: opts.configPath,
    host: opts.host,
    port: opts.port,
    adminPort: opts.adminPort,
    logger,
  });
  try {
    await server.start();
  } catch (err) {
    // A config error names the file and the path already (`mesh.yaml: services.x.retry…`).
    const message = (err as Error).message;
    const what =
      err instanceof MeshError
        ? message
        : message.includes('EADDRINUSE')
          ? `could not start: ${message}; is another control server running? Stop it or pick another --port / --admin-port`
          : `could not start: ${message}`;
    logger.fatal(
      { event: 'start_failed', err: (err as Error).message, code: (err as MeshError).code },
      'control server failed to start',
    );
    out.stderr(`meshlet control: ${what}`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ event: 'signal', signal }, 'second signal: exiting now');
        resolve(1);
        return;
      }
      stopping = true;
      logger.info({ event: 'signal', signal }, 'stopping on signal');
      server.stop().then(
        () => resolve(0),
        (err: Error) => {
          logger.error({ event: 'stop_failed', err: err.message }, 'graceful stop failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
