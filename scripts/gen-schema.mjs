#!/usr/bin/env node
/**
 * Writes the JSON Schema of a mesh config (packages/core/schema/mesh.schema.json) from the
 * TypeBox schema in @meshlet/core, so editors validate and complete mesh.yaml. Runs on the built
 * package (run `npm run build` first):
 *
 *   node scripts/gen-schema.mjs          write the file   (npm run schema)
 *   node scripts/gen-schema.mjs --check  exit 1 when the checked-in file differs   (npm run schema:check)
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const core = join(root, 'packages', 'core');
const target = join(core, 'schema', 'mesh.schema.json');

let meshConfigJsonSchema;
try {
  ({ meshConfigJsonSchema } = await import(pathToFileURL(join(core, 'dist', 'config', 'schema.js')).href));
} catch (err) {
  console.error(`cannot load packages/core/dist/config/schema.js (${err.message}); run npm run build first`);
  process.exit(2);
}

// Formatted as prettier would (CI runs prettier --check on the repository).
const prettier = await import('prettier');
const options = (await prettier.resolveConfig(target)) ?? {};
const text = await prettier.format(JSON.stringify(meshConfigJsonSchema()), { ...options, parser: 'json' });
const shown = relative(root, target);

if (process.argv.includes('--check')) {
  const current = await readFile(target, 'utf8').catch(() => undefined);
  if (current !== text) {
    console.error(
      current === undefined
        ? `${shown} is missing; run npm run schema and commit it`
        : `${shown} differs from the schema in packages/core/src/config/schema.ts; run npm run schema and commit it`,
    );
    process.exit(1);
  }
  console.log(`${shown} matches the schema`);
} else {
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, text);
  console.log(`wrote ${shown}`);
}
