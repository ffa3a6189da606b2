/**
 * Reading a mesh config file (JSON or YAML, the shape of `createMesh`'s `{ services: { … } }`)
 * without trusting it. A config file may be written by anyone with access to a config repo or a
 * ConfigMap, so the parser refuses what could hurt the process reading it: files over 16 MiB
 * (JSON) or 4 MiB (YAML), YAML tags (no `!!js/function`, no `!!binary`, …), alias bombs
 * ("billion laughs"), nesting deeper than any config needs, duplicate keys (a service defined
 * twice would silently lose one definition). Every check is linear in the file. `__proto__`
 * keys end up as ordinary own properties (never a prototype), and core's `validateMeshConfig`
 * reads the result through null-prototype copies anyway.
 */
import { open } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { extname } from 'node:path';
import { parseDocument, type YAMLError } from 'yaml';
import {
  MeshConfigError,
  validateMeshConfig,
  validateServiceConfig,
  type MeshConfig,
  type ResolvedMeshConfig,
  type ResolvedServiceConfig,
} from '@meshlet/core';
import { ConfigFileError, ConfigFileSchemaError } from './errors.js';
import { checkJson } from './json-check.js';
import { lineColumn } from './line-column.js';
import { jsonLocator, yamlLocator, type Locator } from './locate.js';
import { yamlToJs } from './yaml-to-js.js';
import { OFF_THREAD_MIN_CHARS, parseOffThread, serializeError, type WorkerResult } from './off-thread.js';

/** Largest JSON config file read: 16 MiB. A mesh of 10 000 services × 10 endpoints takes 2 MiB. */
export const MAX_CONFIG_FILE_BYTES = 16 * 1024 * 1024;

/**
 * Largest YAML config file read: 4 MiB. The `yaml` parser is far slower than `JSON.parse`
 * (10 000 services × 10 endpoints, 2.6 MiB: 1.3 s; a 15 MiB map of a million keys: 26 s, all
 * of it blocking the event loop), so a YAML file is held to what a person writes; a generated
 * config belongs in JSON.
 */
export const MAX_YAML_FILE_BYTES = 4 * 1024 * 1024;

/**
 * Most nested levels a config file may have. A valid config needs 8
 * (`services.x.routes[0].match.headers.h.exact`); deeper input only costs stack and time.
 */
export const MAX_CONFIG_DEPTH = 64;

/** Most anchors (`&name`) in a YAML config file. Sharing policy blocks needs a handful. */
export const MAX_YAML_ANCHORS = 1000;

/** Most aliases (`*name`) in a YAML config file: enough for one shared block per service of a large mesh. */
export const MAX_YAML_ALIASES = 10_000;

/**
 * Most nodes aliases may add once expanded. A "billion laughs" file (aliases of aliases) or one
 * large block aliased many times exceeds it at once, before anything is expanded; a file may
 * still hold this many nodes written out, so aliases never make validation costlier than a
 * file without them could.
 */
export const MAX_YAML_ALIAS_NODES = 1_000_000;

/** A parsed and validated config file. */
export interface ConfigFile {
  /** The config as written (JSON values; `validateMeshConfig` accepted it). */
  config: MeshConfig;
  /** The config with every default filled in. */
  resolved: ResolvedMeshConfig;
  /** The file's text (UTF-8 decoded, a leading byte-order mark removed). */
  text: string;
}

/** Which parser a file's text goes to. */
export type ConfigFileFormat = 'json' | 'yaml';

/** Options of `readConfigFile` and `parseConfigText`. */
export interface ConfigFileOptions {
  /**
   * The file is the whole mesh config (default true): a route's backends must be services the
   * file defines. Set false when other places add services (the static `services` of
   * `createMesh`, a control plane, self-registrations): each service is then validated on its
   * own, and references between services are left to whoever merges the config.
   */
  standalone?: boolean;
}

/**
 * Reads, parses and validates a mesh config file: `.json`, or `.yaml` / `.yml`.
 * Throws `ConfigFileError` (`MESHLET_ERR_CONFIG_FILE`: unreadable, too large, a syntax error
 * with its line and column) or `ConfigFileSchemaError` (a `MeshConfigError` naming the file and
 * the config path).
 */
export async function readConfigFile(path: string, options: ConfigFileOptions = {}): Promise<ConfigFile> {
  const format = formatOf(path);
  const { bytes } = await readConfigBytes(path, path, format);
  return (await parseConfigAsync(decodeConfigBytes(bytes, path), path, format, options)).parsed;
}

/**
 * `parseConfigLocated`, parsing a large file on a worker thread (see `off-thread.ts`) so the
 * event loop keeps serving meanwhile. `signal` stops the worker. For a file parsed off thread,
 * the locator places paths in JSON only (a large YAML document is not parsed again here).
 */
export async function parseConfigAsync(
  text: string,
  file: string,
  format: ConfigFileFormat,
  options: ConfigFileOptions = {},
  signal?: AbortSignal,
): Promise<{ parsed: ConfigFile; locate: Locator }> {
  const standalone = options.standalone ?? true;
  if (text.length < OFF_THREAD_MIN_CHARS[format] || text.length > maxBytes(format)) {
    return parseConfigLocated(text, file, format, options);
  }
  text = stripBom(text);
  const config = await parseOffThread(import.meta.url, text, file, format, standalone, signal);
  // Validated on the worker already; validated again here for the resolved form, which lives on this thread.
  let resolved: ResolvedMeshConfig;
  const locate: Locator = format === 'json' ? jsonLocator(text) : () => undefined;
  try {
    resolved = validateConfig(config, standalone);
  } catch (err) {
    if (err instanceof MeshConfigError) throw new ConfigFileSchemaError(file, err, locate(err.path));
    throw err;
  }
  return { parsed: { config: config as MeshConfig, resolved, text }, locate };
}

/** Entry point of the parsing worker (`off-thread.ts`): parses and validates, returning the config or a serialised error. */
export function parseInWorker(text: string, file: string, format: ConfigFileFormat, standalone: boolean): WorkerResult {
  try {
    return { ok: true, config: parseConfigLocated(text, file, format, { standalone }).parsed.config };
  } catch (err) {
    return { ok: false, error: serializeError(err) };
  }
}

/**
 * Validates a parsed file: as a whole mesh (`validateMeshConfig`), or, not `standalone`, each
 * service on its own (`validateServiceConfig` without the set of known services, so a route may
 * name a service defined elsewhere) after core has checked the top level. Throws one
 * `MeshConfigError` with every issue.
 */
function validateConfig(value: unknown, standalone: boolean): ResolvedMeshConfig {
  if (standalone || value === null || typeof value !== 'object' || Array.isArray(value)) {
    return validateMeshConfig(value);
  }
  const root = value as Record<string, unknown>;
  const services = root.services;
  const servicesAreObject = services !== null && typeof services === 'object' && !Array.isArray(services);
  const issues: Array<{ path: string; message: string }> = [];
  // The top level (unknown keys, `services` of the wrong kind) is core's to judge: everything
  // but the services themselves, which are checked one by one below.
  const top: Record<string, unknown> = {};
  for (const key of Object.keys(root)) {
    const v = key === 'services' && servicesAreObject ? {} : root[key];
    Object.defineProperty(top, key, { value: v, writable: true, enumerable: true, configurable: true });
  }
  try {
    validateMeshConfig(top);
  } catch (err) {
    if (!(err instanceof MeshConfigError)) throw err;
    issues.push(...err.issues);
  }
  const resolved = new Map<string, ResolvedServiceConfig>();
  if (servicesAreObject) {
    for (const [name, config] of Object.entries(services as Record<string, unknown>)) {
      try {
        resolved.set(name, validateServiceConfig(name, config));
      } catch (err) {
        if (!(err instanceof MeshConfigError)) throw err;
        issues.push(...err.issues);
      }
    }
  }
  if (issues.length > 0) throw new MeshConfigError(issues);
  return { services: resolved };
}

/**
 * The config without a top-level `"$schema": "<url>"`, the key by which a JSON file names its
 * JSON Schema for editors (YAML files use a `# yaml-language-server: $schema=…` comment). It is
 * the file's, not the mesh's: dropped here, so the same file serves editors and meshlet.
 */
function withoutSchemaKey(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const record = value as Record<string, unknown>;
  if (!Object.hasOwn(record, '$schema') || typeof record.$schema !== 'string') return value;
  const rest: Record<string, unknown> = {};
  for (const key of Object.keys(record)) {
    if (key === '$schema') continue;
    if (key === '__proto__') {
      Object.defineProperty(rest, key, { value: record[key], writable: true, enumerable: true, configurable: true });
    } else rest[key] = record[key];
  }
  return rest;
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * Parses and validates the text of a config file; `fileNameForErrors` names it in errors and,
 * unless `format` is given, picks the parser by its extension (`.json`, `.yaml`, `.yml`).
 * Throws like `readConfigFile`.
 */
export function parseConfigText(
  text: string,
  fileNameForErrors: string,
  format: ConfigFileFormat = formatOf(fileNameForErrors),
  options: ConfigFileOptions = {},
): ConfigFile {
  return parseConfigLocated(text, fileNameForErrors, format, options).parsed;
}

/**
 * `parseConfigText`, also returning a locator of config paths in the file, for errors found
 * after parsing (such as a merge the mesh refuses). The locator holds the parsed document: keep
 * it only as long as it is needed.
 */
export function parseConfigLocated(
  text: string,
  file: string,
  format: ConfigFileFormat = formatOf(file),
  options: ConfigFileOptions = {},
): { parsed: ConfigFile; locate: Locator } {
  // UTF-16 code units never outnumber UTF-8 bytes, so this never refuses what a file read allows.
  if (text.length > maxBytes(format)) throw tooLarge(file, format, text.length, 'characters');
  text = stripBom(text);
  const parsed = format === 'json' ? parseJson(text, file) : parseYaml(text, file);
  const { locate } = parsed;
  const value = withoutSchemaKey(parsed.value);
  let resolved: ResolvedMeshConfig;
  try {
    resolved = validateConfig(value, options.standalone ?? true);
  } catch (err) {
    if (err instanceof MeshConfigError) throw new ConfigFileSchemaError(file, err, locate(err.path));
    throw err;
  }
  return { parsed: { config: value as MeshConfig, resolved, text }, locate };
}

/** The parser for a file name, by extension; `ConfigFileError` (`format`) for any other name. */
export function formatOf(file: string): ConfigFileFormat {
  const ext = extname(file).toLowerCase();
  if (ext === '.json') return 'json';
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  throw new ConfigFileError(
    file,
    'format',
    `cannot tell the format from the name: a mesh config file must end in .json, .yaml or .yml`,
  );
}

/**
 * Reads a file's bytes, refusing one larger than the limit of its format (`MAX_CONFIG_FILE_BYTES`,
 * `MAX_YAML_FILE_BYTES`; checked before reading and while reading, in case it grows). `stats` is the open file's own (`fstat`), so it matches
 * the bytes even when the path is replaced meanwhile. Throws `ConfigFileError` naming `file`.
 */
export async function readConfigBytes(
  path: string,
  file: string,
  format: ConfigFileFormat,
): Promise<{ bytes: Buffer; stats: Stats }> {
  const max = maxBytes(format);
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw fileError(file, err);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      throw new ConfigFileError(file, 'io', `is not a regular file: point to the mesh config file itself`);
    }
    if (stats.size > max) throw tooLarge(file, format, stats.size, 'bytes');
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      // The size from fstat plus one byte (to see EOF or growth in one read), then 64 KiB at a time.
      const want = total < stats.size ? stats.size - total + 1 : 64 * 1024;
      const chunk = Buffer.allocUnsafe(Math.min(want, 1024 * 1024));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > max) throw tooLarge(file, format, total, 'bytes');
      chunks.push(bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead));
    }
    return { bytes: Buffer.concat(chunks, total), stats };
  } catch (err) {
    throw err instanceof ConfigFileError ? err : fileError(file, err);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes a config file's bytes as UTF-8; `ConfigFileError` (`encoding`) if they are not. */
export function decodeConfigBytes(bytes: Uint8Array, file: string): string {
  try {
    return utf8.decode(bytes);
  } catch (err) {
    throw new ConfigFileError(file, 'encoding', `is not valid UTF-8: save it as UTF-8`, undefined, { cause: err });
  }
}

function parseJson(text: string, file: string): { value: unknown; locate: Locator } {
  const problem = checkJson(text, MAX_CONFIG_DEPTH);
  if (problem !== undefined) {
    throw new ConfigFileError(file, 'syntax', `invalid JSON: ${problem.message}`, lineColumn(text, problem.offset));
  }
  try {
    return { value: JSON.parse(text), locate: jsonLocator(text) };
  } catch (err) {
    // checkJson accepts only what JSON.parse accepts; this is a last line of defence.
    throw new ConfigFileError(file, 'syntax', `invalid JSON: ${(err as Error).message}`, undefined, { cause: err });
  }
}

function parseYaml(text: string, file: string): { value: unknown; locate: Locator } {
  try {
    const doc = parseDocument(text, {
      version: '1.2',
      schema: 'core',
      // The YAML 1.1 types (!!binary, !!set, !!omap, !!timestamp …) are not JSON values.
      resolveKnownTags: false,
      // `<<` merge keys are YAML 1.1; in a config file they are an unknown key, reported with its path.
      merge: false,
      // Duplicate keys are errors, found by yamlToJs in linear time (this option is quadratic).
      uniqueKeys: false,
      // Keys are strings, as in JSON; a collection as a key is an error.
      stringKeys: true,
      strict: true,
      prettyErrors: false,
    });
    const problem = doc.errors[0] ?? doc.warnings[0];
    if (problem !== undefined) {
      const more = doc.errors.length + doc.warnings.length - 1;
      throw yamlError(file, text, problem, more);
    }
    const converted = yamlToJs(doc.contents, {
      maxDepth: MAX_CONFIG_DEPTH,
      maxAnchors: MAX_YAML_ANCHORS,
      maxAliases: MAX_YAML_ALIASES,
      maxAliasNodes: MAX_YAML_ALIAS_NODES,
    });
    if ('problem' in converted) {
      const { offset, message } = converted.problem;
      throw new ConfigFileError(file, 'syntax', `invalid YAML: ${message}`, lineColumn(text, offset));
    }
    return { value: converted.value, locate: yamlLocator(doc, text) };
  } catch (err) {
    if (err instanceof ConfigFileError) throw err;
    throw new ConfigFileError(file, 'syntax', `invalid YAML: ${(err as Error)?.message ?? String(err)}`, undefined, {
      cause: err,
    });
  }
}

function yamlError(file: string, text: string, problem: YAMLError, more: number): ConfigFileError {
  let message = problem.message;
  if (problem.code === 'TAG_RESOLVE_FAILED') {
    message = `${message}; a mesh config file allows only the YAML 1.2 core tags (!!str, !!int, !!float, !!bool, !!null, !!seq, !!map): remove it`;
  } else if (problem.code === 'RESOURCE_EXHAUSTION') {
    message = `nesting too deep to parse (${message}); a mesh config needs fewer than ${MAX_CONFIG_DEPTH} levels`;
  }
  return new ConfigFileError(
    file,
    'syntax',
    `invalid YAML: ${message}${more > 0 ? ` (and ${more} more problem${more > 1 ? 's' : ''})` : ''}`,
    lineColumn(text, problem.pos[0]),
    { cause: problem },
  );
}

function maxBytes(format: ConfigFileFormat): number {
  return format === 'yaml' ? MAX_YAML_FILE_BYTES : MAX_CONFIG_FILE_BYTES;
}

function tooLarge(file: string, format: ConfigFileFormat, size: number, unit: string): ConfigFileError {
  const advice =
    format === 'yaml'
      ? `write a generated config as JSON (up to ${MAX_CONFIG_FILE_BYTES} bytes), or trim the file`
      : 'split the mesh or trim the file';
  return new ConfigFileError(
    file,
    'too-large',
    `${size} ${unit} is over the ${maxBytes(format)}-byte limit of a ${format === 'yaml' ? 'YAML' : 'JSON'} config file: ${advice}`,
  );
}

/** A `ConfigFileError` naming the file and what to do, for an error of a file system call on it. */
export function fileError(file: string, err: unknown): ConfigFileError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new ConfigFileError(file, 'not-found', `not found: create the file or fix the path`, undefined, {
      cause: err,
    });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new ConfigFileError(file, 'io', `permission denied: make it readable by this process's user`, undefined, {
      cause: err,
    });
  }
  if (code === 'EISDIR') {
    return new ConfigFileError(file, 'io', `is a directory: point to the mesh config file itself`, undefined, {
      cause: err,
    });
  }
  return new ConfigFileError(
    file,
    'io',
    `cannot read it (${code ?? 'error'}: ${(err as Error)?.message ?? String(err)})`,
    undefined,
    { cause: err },
  );
}
