import { MeshConfigError, MeshError } from '@meshlet/core';

/**
 * What went wrong with a config file:
 * - `not-found`: the file (or its directory) does not exist;
 * - `io`: it exists but cannot be read (permissions, a directory, an I/O error);
 * - `too-large`: it is larger than the limit (16 MiB for JSON, 4 MiB for YAML);
 * - `format`: its name ends neither in `.json` nor in `.yaml` / `.yml`;
 * - `encoding`: it is not UTF-8;
 * - `syntax`: it is not valid JSON / YAML, or uses YAML features refused for safety (tags,
 *   too many aliases, duplicate keys, nesting too deep); `line` and `column` say where.
 */
export type ConfigFileErrorReason = 'not-found' | 'io' | 'too-large' | 'format' | 'encoding' | 'syntax';

/**
 * A config file could not be read or parsed (`MESHLET_ERR_CONFIG_FILE`). The message starts with
 * `file[:line:column]:` so editors and terminals can jump to it. A file that parses but does not
 * describe a valid mesh gives a `ConfigFileSchemaError` (a `MeshConfigError`) instead.
 */
export class ConfigFileError extends MeshError {
  /** The file, as it was named by the caller. */
  readonly file: string;
  readonly reason: ConfigFileErrorReason;
  /** 1-based line of a syntax error, when known. */
  readonly line: number | undefined;
  /** 1-based column (UTF-16 code units) of a syntax error, when known. */
  readonly column: number | undefined;
  /** What is wrong, without the `file:line:column:` prefix. */
  readonly detail: string;
  constructor(
    file: string,
    reason: ConfigFileErrorReason,
    detail: string,
    where?: { line: number; column: number },
    options?: { cause?: unknown },
  ) {
    const at = where ? `${file}:${where.line}:${where.column}` : file;
    super('MESHLET_ERR_CONFIG_FILE', `${at}: ${detail}`, options);
    this.file = file;
    this.reason = reason;
    this.line = where?.line;
    this.column = where?.column;
    this.detail = detail;
  }
}

/**
 * A config file that parsed but is not a valid mesh config: the core `MeshConfigError` with the
 * file (and, when the first issue's path is found in the text, its line and column) first in the
 * message: `mesh.yaml:4:7: services.users.retry.maxAttempts: …`. `issues` and `path` are the
 * original's; `cause` is the original error.
 */
export class ConfigFileSchemaError extends MeshConfigError {
  readonly file: string;
  /** 1-based line where the first issue's path is written, when found. */
  readonly line: number | undefined;
  /** 1-based column (UTF-16 code units) of it, when found. */
  readonly column: number | undefined;
  constructor(file: string, original: MeshConfigError, where?: { line: number; column: number }) {
    super(original.issues);
    this.file = file;
    this.line = where?.line;
    this.column = where?.column;
    this.message = `${where ? `${file}:${where.line}:${where.column}` : file}: ${original.message}`;
    this.cause = original;
  }
}
