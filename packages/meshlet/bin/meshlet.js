#!/usr/bin/env node
// The `meshlet` command line: the same CLI as @meshlet/control's bin (control, check, endpoints, status).
import { main } from '@meshlet/control';

main(process.argv.slice(2)).then(
  (code) => {
    // Exit now rather than wait for idle keep-alive sockets of fetch.
    process.exit(code);
  },
  (err) => {
    process.stderr.write(`meshlet: ${err?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
