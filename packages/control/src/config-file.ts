/**
 * Loads the control server's config file with the file source's reader (`readConfigFile` of
 * `@meshlet/discovery`: JSON or YAML, size and alias limits, validated with core's schema), so the
 * server, `watchFile` and `meshlet check` accept and refuse exactly the same files.
 */
import type { MeshConfig } from '@meshlet/core';
import { readConfigFile } from '@meshlet/discovery';

export interface LoadedConfig {
  services: MeshConfig['services'];
  text: string;
}

/** Throws `ConfigFileError` or `ConfigFileSchemaError` (a `MeshConfigError`), both naming the file. */
export async function loadConfigFile(path: string): Promise<LoadedConfig> {
  const file = await readConfigFile(path);
  return { services: file.config.services ?? {}, text: file.text };
}
