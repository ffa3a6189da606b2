export { watchFile, type WatchFileOptions } from './watch.js';
export {
  readConfigFile,
  parseConfigText,
  MAX_CONFIG_FILE_BYTES,
  MAX_YAML_FILE_BYTES,
  MAX_CONFIG_DEPTH,
  MAX_YAML_ANCHORS,
  MAX_YAML_ALIASES,
  MAX_YAML_ALIAS_NODES,
  type ConfigFile,
  type ConfigFileFormat,
  type ConfigFileOptions,
} from './parse.js';
export { ConfigFileError, ConfigFileSchemaError, type ConfigFileErrorReason } from './errors.js';
