/**
 * readConfigFile / parseConfigText on real temp files: both formats load; every way a file can
 * be wrong gives a typed error naming the file and the line/column or config path; hostile
 * YAML (tags, alias bombs, deep nesting, duplicate keys, `__proto__`) is refused or harmless.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MeshConfigError } from '@meshlet/core';
import {
  ConfigFileError,
  ConfigFileSchemaError,
  MAX_CONFIG_FILE_BYTES,
  MAX_YAML_FILE_BYTES,
  parseConfigText,
  readConfigFile,
} from '../../src/file/index.js';
import { parsePath } from '../../src/file/locate.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshlet-file-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: string | Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

/** Asserts `promise` rejects with a ConfigFileError and returns it. */
async function fileError(promise: Promise<unknown>): Promise<ConfigFileError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ConfigFileError, `expected ConfigFileError, got ${String(err)}`);
    assert.equal(err.code, 'MESHLET_ERR_CONFIG_FILE');
    return err;
  }
  assert.fail('expected a ConfigFileError, nothing was thrown');
}

function syncFileError(fn: () => unknown): ConfigFileError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigFileError, `expected ConfigFileError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigFileError, nothing was thrown');
}

const YAML_CONFIG = `# yaml-language-server: $schema=../schema/mesh.schema.json
services:
  users:
    endpoints:
      - 10.0.0.1:8080
      - { address: "10.0.0.2:8080", zone: a, weight: 3 }
    retry:
      maxAttempts: 4
  orders:
    endpoints: ["10.0.1.1:80"]
`;

describe('readConfigFile', () => {
  it('loads a YAML file: the config as written, the resolved config and the text', async () => {
    const path = await file('mesh.yaml', YAML_CONFIG);
    const { config, resolved, text } = await readConfigFile(path);
    assert.equal(text, YAML_CONFIG);
    assert.deepEqual(Object.keys(config.services), ['users', 'orders']);
    assert.deepEqual(config.services.users!.endpoints, [
      '10.0.0.1:8080',
      { address: '10.0.0.2:8080', zone: 'a', weight: 3 },
    ]);
    const users = resolved.services.get('users')!;
    assert.equal(users.retry.maxAttempts, 4);
    assert.deepEqual(
      users.endpoints.map((e) => [e.address, e.weight]),
      [
        ['10.0.0.1:8080', 1],
        ['10.0.0.2:8080', 3],
      ],
    );
  });

  it('loads the same config from .yml and .json', async () => {
    const yml = await readConfigFile(await file('mesh.yml', YAML_CONFIG));
    const json = await readConfigFile(await file('mesh.json', JSON.stringify(yml.config, null, 2)));
    assert.deepEqual(json.config, yml.config);
    assert.deepEqual(json.resolved, yml.resolved);
  });

  it('accepts and drops a top-level "$schema" naming the JSON Schema (for editors)', async () => {
    const path = await file(
      'schema-key.json',
      JSON.stringify({ $schema: '../node_modules/@meshlet/core/schema/mesh.schema.json', services: { users: {} } }),
    );
    const { config } = await readConfigFile(path);
    assert.deepEqual(config, { services: { users: {} } });
    // Only a string: anything else is reported like any unknown key.
    let caught: unknown;
    try {
      parseConfigText(`{"$schema": 1, "services": {}}`, 'n.json');
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof ConfigFileSchemaError, String(caught));
    assert.equal(caught.path, '$schema');
  });

  it('accepts a UTF-8 byte-order mark (as some editors save)', async () => {
    const path = await file('bom.json', `\uFEFF{"services":{"users":{"endpoints":["10.0.0.1:80"]}}}`);
    const { config } = await readConfigFile(path);
    assert.deepEqual(Object.keys(config.services), ['users']);
  });

  it('names a JSON syntax error by line and column', async () => {
    const path = await file('bad.json', `{\n  "services": {\n    "users": { "endpoints": ["10.0.0.1:80",] }\n  }\n}\n`);
    const err = await fileError(readConfigFile(path));
    assert.equal(err.reason, 'syntax');
    assert.equal(err.file, path);
    assert.equal(err.line, 3);
    assert.equal(err.column, 44);
    assert.ok(err.message.startsWith(`${path}:3:44: invalid JSON: `), err.message);
    assert.match(err.message, /trailing comma/);
  });

  it('names a YAML syntax error by line and column', async () => {
    const path = await file('bad.yaml', `services:\n  users:\n    endpoints: ["10.0.0.1:80"\n    retry: {}\n`);
    const err = await fileError(readConfigFile(path));
    assert.equal(err.reason, 'syntax');
    assert.equal(err.line, 4);
    assert.ok(err.message.startsWith(`${path}:4:`), err.message);
    assert.match(err.message, /invalid YAML/);
  });

  it('names the file and the config path of a schema error, keeping issues and path', async () => {
    const path = await file(
      'schema.yaml',
      `services:\n  users:\n    endpoints: ["10.0.0.1:80"]\n    retry: { maxAttempts: -1, bakoff: {} }\n`,
    );
    let caught: unknown;
    await readConfigFile(path).catch((err: unknown) => (caught = err));
    assert.ok(caught instanceof MeshConfigError, String(caught));
    assert.ok(caught instanceof ConfigFileSchemaError);
    assert.equal(caught.code, 'MESHLET_ERR_CONFIG');
    assert.equal(caught.file, path);
    const paths = caught.issues.map((i) => i.path).sort();
    assert.deepEqual(paths, ['services.users.retry.bakoff', 'services.users.retry.maxAttempts']);
    assert.equal(caught.path, caught.issues[0]!.path);
    // The first issue's key is located in the file: line 4, where `retry: {…}` is written.
    assert.equal(caught.line, 4);
    assert.equal(caught.column, caught.path.endsWith('bakoff') ? 31 : 14);
    assert.ok(caught.message.startsWith(`${path}:4:${caught.column}: ${caught.path}: `), caught.message);
    assert.match(caught.message, /did you mean "backoff"/);
    assert.ok(caught.cause instanceof MeshConfigError);
  });

  it('reports a missing file, a directory and an unknown extension', async () => {
    const missing = await fileError(readConfigFile(join(dir, 'nope.yaml')));
    assert.equal(missing.reason, 'not-found');
    assert.match(missing.message, /nope\.yaml: not found: create the file or fix the path$/);

    const sub = join(dir, 'adir.yaml');
    await mkdir(sub);
    const isDir = await fileError(readConfigFile(sub));
    assert.equal(isDir.reason, 'io');
    assert.match(isDir.message, /adir\.yaml: is not a regular file/);

    const ext = await fileError(readConfigFile(await file('mesh.toml', 'services = {}')));
    assert.equal(ext.reason, 'format');
    assert.match(ext.message, /must end in \.json, \.yaml or \.yml/);
  });

  it('refuses a JSON file over 16 MiB and a YAML file over 4 MiB, before reading them', async () => {
    const json = await file('huge.json', '');
    await truncate(json, MAX_CONFIG_FILE_BYTES + 1); // sparse: nothing written
    const jsonErr = await fileError(readConfigFile(json));
    assert.equal(jsonErr.reason, 'too-large');
    assert.match(jsonErr.message, /: 16777217 bytes is over the 16777216-byte limit of a JSON config file/);
    const yaml = await file('huge.yaml', '');
    await truncate(yaml, MAX_YAML_FILE_BYTES + 1);
    const yamlErr = await fileError(readConfigFile(yaml));
    assert.match(
      yamlErr.message,
      /: 4194305 bytes is over the 4194304-byte limit of a YAML config file: write a generated config as JSON/,
    );
    // The same bounds hold for text handed over directly.
    const text = syncFileError(() => parseConfigText(' '.repeat(MAX_YAML_FILE_BYTES + 1), 'big.yaml'));
    assert.equal(text.reason, 'too-large');
    assert.match(text.message, /^big\.yaml: 4194305 characters is over the 4194304-byte limit/);
  });

  it('refuses a file that is not UTF-8', async () => {
    const path = await file('latin1.yaml', Buffer.from('services: { caf\xe9: {} }\n', 'latin1'));
    const err = await fileError(readConfigFile(path));
    assert.equal(err.reason, 'encoding');
    assert.match(err.message, /not valid UTF-8/);
  });
});

describe('hostile YAML', () => {
  it('rejects a "billion laughs" alias bomb without expanding it', { timeout: 10_000 }, () => {
    const levels = 'abcdefghij';
    let text = `a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n`;
    for (let i = 1; i < levels.length; i++) {
      text += `${levels[i]}: &${levels[i]} [${Array(10)
        .fill(`*${levels[i - 1]}`)
        .join(', ')}]\n`;
    }
    text += 'services: {}\n'; // 10^10 "lol"s if expanded
    const err = syncFileError(() => parseConfigText(text, 'bomb.yaml'));
    assert.equal(err.reason, 'syntax');
    assert.match(
      err.message,
      /^bomb\.yaml:\d+:\d+: invalid YAML: aliases \(\*name\) expand to more than 1000000 nodes/,
    );
  });

  it('rejects one large block aliased many times (each alias counts once for the yaml package)', () => {
    const endpoints = Array.from({ length: 20_000 }, (_, i) => `"10.0.${i >> 8}.${i & 255}:80"`).join(', ');
    let text = `x-all: &all [${endpoints}]\nservices:\n`;
    for (let i = 0; i < 60; i++) text += `  s${i}: { endpoints: *all }\n`;
    const err = syncFileError(() => parseConfigText(text, 'wide.yaml'));
    assert.match(
      err.message,
      /^wide\.yaml:\d+:\d+: invalid YAML: aliases \(\*name\) expand to more than 1000000 nodes/,
    );
  });

  it('bounds the numbers of anchors and aliases, and refuses cycles and unknown aliases', () => {
    const anchors = Array.from({ length: 1001 }, (_, i) => `a${i}: &a${i} x`).join('\n');
    assert.match(
      syncFileError(() => parseConfigText(anchors, 'anchors.yaml')).message,
      /:1001:\d+: invalid YAML: more than 1000 anchors/,
    );
    const aliases = `a: &a x\nb: [${Array(10_001).fill('*a').join(', ')}]\n`;
    assert.match(
      syncFileError(() => parseConfigText(aliases, 'aliases.yaml')).message,
      /invalid YAML: more than 10000 aliases/,
    );
    for (const text of ['a: &a [1, *a]\n', 'a: &a { b: *a }\n', 'a: *nope\n']) {
      const err = syncFileError(() => parseConfigText(text, 'cycle.yaml'));
      assert.equal(err.reason, 'syntax', err.message);
      assert.equal(err.line, 1, err.message);
    }
  });

  it(
    "reads a 100 000-key map in linear time (the yaml package's duplicate-key check is quadratic)",
    { timeout: 60_000 },
    () => {
      const text = Array.from({ length: 100_000 }, (_, i) => `k${i}: ${i}`).join('\n') + '\nk5: again\n';
      const err = syncFileError(() => parseConfigText(text, 'flat.yaml'));
      assert.equal(err.message, 'flat.yaml:100001:1: invalid YAML: duplicate key "k5" in the same map');
    },
  );

  it('accepts one shared block aliased by every service of a large mesh', () => {
    let text = `services:\n  s0: { endpoints: ["10.0.0.1:80"], retry: &retry { maxAttempts: 3 } }\n`;
    for (let i = 1; i < 500; i++) text += `  s${i}: { endpoints: ["10.0.0.1:80"], retry: *retry }\n`;
    const { resolved } = parseConfigText(text, 'shared.yaml');
    assert.equal(resolved.services.size, 500);
    assert.equal(resolved.services.get('s499')!.retry.maxAttempts, 3);
  });

  it('accepts a few aliases sharing a policy block', () => {
    const text = `services:\n  users:\n    endpoints: ["10.0.0.1:80"]\n    retry: &retry { maxAttempts: 5 }\n  orders:\n    endpoints: ["10.0.0.2:80"]\n    retry: *retry\n`;
    const { resolved } = parseConfigText(text, 'anchors.yaml');
    assert.equal(resolved.services.get('orders')!.retry.maxAttempts, 5);
  });

  it('rejects tags, standard or custom, naming where they are', () => {
    for (const [value, tag] of [
      ['!!js/function "function () { return 1 }"', 'js/function'],
      ['!!binary aGVsbG8=', 'binary'],
      ['!!set { a }', 'set'],
      ['!!timestamp 2001-12-14', 'timestamp'],
      ['!mine x', '!mine'],
    ] as const) {
      const err = syncFileError(() => parseConfigText(`services:\n  users:\n    zone: ${value}\n`, 'tags.yaml'));
      assert.equal(err.reason, 'syntax', err.message);
      assert.equal(err.line, 3, err.message);
      assert.ok(err.message.includes(tag), err.message);
      assert.match(err.message, /allows only the YAML 1.2 core tags/);
    }
    // The core schema's own tags are plain JSON types and stay allowed.
    const { config } = parseConfigText(
      `services: !!map\n  users: { endpoints: !!seq [!!str 10.0.0.1:80] }\n`,
      'core.yaml',
    );
    assert.deepEqual(config.services.users!.endpoints, ['10.0.0.1:80']);
  });

  it('rejects duplicate keys, in YAML and JSON', () => {
    const yaml = syncFileError(() =>
      parseConfigText(`services:\n  users:\n    endpoints: ["10.0.0.1:80"]\n  users:\n    endpoints: []\n`, 'dup.yaml'),
    );
    assert.equal(yaml.line, 4);
    assert.match(yaml.message, /^dup\.yaml:4:3: invalid YAML: duplicate key "users" in the same map$/);
    const json = syncFileError(() =>
      parseConfigText(`{"services": {\n  "users": {},\n  "us\\u0065rs": {}\n}}`, 'dup.json'),
    );
    assert.equal(json.line, 3);
    assert.equal(json.column, 3);
    assert.match(json.message, /duplicate key "users"/);
  });

  it('rejects nesting deeper than any config needs, iteratively and at any depth', () => {
    for (const depth of [65, 100_000]) {
      const yaml = syncFileError(() =>
        parseConfigText(`services: ${'['.repeat(depth)}${']'.repeat(depth)}\n`, 'deep.yaml'),
      );
      assert.equal(yaml.reason, 'syntax');
      assert.match(yaml.message, /nesting (deeper than 64 levels|too deep)/);
      const json = syncFileError(() =>
        parseConfigText(`{"services": ${'['.repeat(depth)}${']'.repeat(depth)}}`, 'deep.json'),
      );
      assert.match(json.message, /^deep\.json:1:77: invalid JSON: nesting deeper than 64 levels$/);
    }
  });

  it('rejects several documents in one file and non-string keys', () => {
    assert.match(
      syncFileError(() => parseConfigText('services: {}\n---\nservices: {}\n', 'docs.yaml')).message,
      /multiple documents/,
    );
    assert.match(
      syncFileError(() => parseConfigText('services:\n  ? [a, b]\n  : {}\n', 'keys.yaml')).message,
      /keys must be strings/,
    );
  });

  it('keeps __proto__ keys as data: never a prototype, never polluting Object.prototype', () => {
    const text = `services:\n  users:\n    endpoints:\n      - address: 10.0.0.1:80\n        metadata: { __proto__: evil, constructor: x, polluted: "no" }\n`;
    const { config, resolved } = parseConfigText(text, 'proto.yaml');
    const metadata = (config.services.users!.endpoints![0] as { metadata: Record<string, string> }).metadata;
    assert.deepEqual(Object.keys(metadata), ['__proto__', 'constructor', 'polluted']);
    assert.equal(Object.getPrototypeOf(metadata), Object.prototype);
    assert.equal(resolved.services.get('users')!.endpoints[0]!.metadata['__proto__'], 'evil');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);

    for (const [name, input] of [
      ['proto.yaml', `__proto__: { polluted: yes }\nservices: {}\n`],
      ['proto.json', `{"__proto__": {"polluted": "yes"}, "services": {}}`],
    ] as const) {
      let caught: unknown;
      try {
        parseConfigText(input, name);
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof ConfigFileSchemaError, String(caught));
      assert.equal(caught.path, '__proto__');
      assert.match(caught.message, new RegExp(`^${name.replace('.', '\\.')}:1:\\d+: __proto__: unknown key`));
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    }
  });

  it('parses YAML 1.2 core scalars: no YAML 1.1 yes/no booleans or sexagesimal numbers', () => {
    const text = `services:\n  users:\n    endpoints:\n      - { address: "10.0.0.1:80", zone: no }\n      - { address: "10.0.0.2:80", zone: 1:20 }\n`;
    const { resolved } = parseConfigText(text, 'y.yaml');
    assert.deepEqual(
      resolved.services.get('users')!.endpoints.map((e) => e.zone),
      ['no', '1:20'],
    );
  });
});

describe('parseConfigText', () => {
  it('picks the parser by extension unless told, and names the file given', () => {
    const text = `{"services": {"users": {"endpoints": ["10.0.0.1:80"]}}}`;
    assert.deepEqual(parseConfigText(text, 'x.json').config, parseConfigText(text, 'x.yaml').config);
    assert.deepEqual(parseConfigText(text, '<stdin>', 'json').config, parseConfigText(text, 'x.json').config);
    // Flow YAML that is not JSON: accepted as YAML, refused as JSON, with the position.
    const err = syncFileError(() => parseConfigText(`{services: {}}`, 'admin upload', 'json'));
    assert.equal(err.message, `admin upload:1:2: invalid JSON: expected a double-quoted property name, got 's'`);
    assert.deepEqual(parseConfigText(`{services: {}}`, 'x.yaml').config, { services: {} });
  });
});

describe('standalone: false', () => {
  it('validates each service on its own, leaving route targets defined elsewhere to the merge', async () => {
    const text = `services:\n  api:\n    endpoints: ["10.0.0.1:80"]\n    routes: [{ backends: [{ service: users }] }]\n`;
    let caught: unknown;
    try {
      parseConfigText(text, 'routes.yaml');
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof ConfigFileSchemaError, String(caught));
    assert.equal(caught.path, 'services.api.routes[0].backends[0].service');
    assert.equal(caught.line, 4);

    const { resolved } = parseConfigText(text, 'routes.yaml', 'yaml', { standalone: false });
    assert.equal(resolved.services.get('api')!.routes.length, 1);
    const path = await file('routes.yaml', text);
    assert.equal((await readConfigFile(path, { standalone: false })).resolved.services.size, 1);
  });

  it('still reports every other issue, top level and per service, with positions', () => {
    let caught: unknown;
    try {
      parseConfigText(
        `{\n  "servics": {},\n  "services": {\n    "a": { "retry": { "maxAttempts": 0 } },\n    "b": { "endpoints": ["x"] }\n  }\n}`,
        'partial.json',
        'json',
        { standalone: false },
      );
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof ConfigFileSchemaError, String(caught));
    assert.deepEqual(
      caught.issues.map((i) => i.path),
      ['servics', 'services.a.retry.maxAttempts', 'services.b.endpoints[0]'],
    );
    assert.match(caught.issues[0]!.message, /did you mean "services"/);
    assert.deepEqual([caught.line, caught.column], [2, 3]);
  });
});

describe('schema error positions', () => {
  it('locates the first issue in YAML and JSON, through quoted keys, indexes and aliases', () => {
    const cases: Array<[string, string, string, number, number]> = [
      [
        'a.yaml',
        `services:\n  users:\n    endpoints:\n      - 10.0.0.1:80\n      - { address: "10.0.0.2", zone: a }\n`,
        'services.users.endpoints[1].address',
        5,
        11,
      ],
      [
        'b.json',
        `{\n  "services": {\n    "api.v2": {\n      "endpoints": ["10.0.0.1:80"],\n      "timeout": { "requestMs": -5 }\n    }\n  }\n}\n`,
        'services["api.v2"].timeout.requestMs',
        5,
        20,
      ],
      [
        'c.yaml',
        `x-shared: &retry { maxAttempts: 0 }\nservices:\n  users:\n    endpoints: ["10.0.0.1:80"]\n    retry: *retry\n`,
        '(root)',
        1,
        1,
      ],
    ];
    for (const [name, text, path, line, column] of cases) {
      let caught: unknown;
      try {
        parseConfigText(text, name);
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof ConfigFileSchemaError, String(caught));
      if (path === '(root)') {
        // `x-shared` is an unknown top-level key, reported (and located) first.
        assert.equal(caught.path, 'x-shared');
      } else {
        assert.equal(caught.path, path, caught.message);
      }
      assert.deepEqual([caught.line, caught.column], [line, column], caught.message);
      assert.ok(caught.message.startsWith(`${name}:${line}:${column}: ${caught.path}: `), caught.message);
    }
  });

  it('gives no position when the path is not written in the file (a missing key)', () => {
    let caught: unknown;
    try {
      parseConfigText(`{}`, 'm.json');
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof ConfigFileSchemaError, String(caught));
    assert.equal(caught.path, 'services');
    assert.equal(caught.line, undefined);
    assert.match(caught.message, /^m\.json: services: expected an object/);
  });
});

describe('parsePath', () => {
  it('splits validator paths, and gives up on what it cannot read back', () => {
    assert.deepEqual(parsePath('(root)'), []);
    assert.deepEqual(parsePath('services.users.endpoints[0].address'), [
      'services',
      'users',
      'endpoints',
      0,
      'address',
    ]);
    assert.deepEqual(parsePath('services["a.b"].routes[12].match.headers["x \\"y\\""]'), [
      'services',
      'a.b',
      'routes',
      12,
      'match',
      'headers',
      'x "y"',
    ]);
    assert.equal(parsePath('services["aaaa"...(300 characters)].retry'), undefined);
    assert.equal(parsePath('services[01]'), undefined);
    assert.equal(parsePath('.services'), undefined);
  });
});
