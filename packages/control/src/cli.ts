/** Entry point of the `meshlet` binary (bin/meshlet.js imports this file): runs `main` on argv. */
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    // Exit now rather than wait for idle keep-alive sockets of fetch (stdout is synchronous on pipes and files).
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`meshlet: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
