import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as client from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, PROJECT_ROOT } from '../../core/config.ts';
import { retryPolicies } from '../../core/retry.ts';
import { clientOptions } from '../../kafka/client-options.ts';

/**
 * The Kafka client's one-file bundle (bin/client-bundle.js, built by scripts/bundle-client.js): `sluice` loads it
 * instead of the package only while it matches what is installed, and it must be the same client.
 */

interface Manifest {
  packages: Record<string, string>;
  files: Record<string, string>;
}
interface ClientBundle {
  BUNDLE_PATH: string;
  MANIFEST_PREFIX: string;
  currentBundle(root?: URL): string | undefined;
  readManifest(bundle: URL): Manifest | undefined;
  sha256(bytes: string | Buffer): string;
}
// Plain JavaScript modules (they run before Node strips types, and under any Node npm runs): imported by URL, typed here.
const runtime = (await import(pathToFileURL(join(PROJECT_ROOT, 'bin/client-bundle.js')).href)) as ClientBundle;
const builder = (await import(pathToFileURL(join(PROJECT_ROOT, 'scripts/bundle-client.js')).href)) as { buildClientBundle(root?: string, out?: string): Promise<Manifest> };

/** What a module's exports are, down to each class's methods and each constant's value. */
function shape(value: unknown, depth = 0): unknown {
  if (typeof value === 'function') {
    const prototype = (value as { prototype?: object }).prototype;
    return { function: value.name, statics: Object.getOwnPropertyNames(value).sort(), methods: prototype ? Object.getOwnPropertyNames(prototype).sort() : [] };
  }
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'symbol') return value.description;
  if (value === null || typeof value !== 'object') return value;
  if (depth > 3) return Object.keys(value).sort();
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, shape((value as Record<string, unknown>)[key], depth + 1)]),
  );
}

describe('the Kafka client bundle', () => {
  let dir: string;
  let bundle: string;
  let manifest: Manifest;
  let bundled: typeof client;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-client-bundle-'));
    bundle = join(dir, 'kafka-client.mjs');
    manifest = await builder.buildClientBundle(PROJECT_ROOT, bundle);
    bundled = (await import(pathToFileURL(bundle).href)) as typeof client;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exports what the package exports, as sluice loads it: the same names, classes with the same methods, the same constants', () => {
    // In a process of its own with sluice's hooks (without the bundle: the package, its ajv resolved to bin/lazy-ajv.js).
    const shapes = JSON.parse(
      execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const { registerClientHooks } = await import(${JSON.stringify(pathToFileURL(join(PROJECT_ROOT, 'bin/client-bundle.js')).href)});
           registerClientHooks(null);
           const shape = ${shape.toString()};
           const fromPackage = await import('@platformatic/kafka');
           const fromBundle = await import(${JSON.stringify(pathToFileURL(bundle).href)});
           process.stdout.write(JSON.stringify({ names: [Object.keys(fromBundle), Object.keys(fromPackage)], shapes: [shape(fromBundle), shape(fromPackage)] }));`,
        ],
        { cwd: PROJECT_ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
      ),
    ) as { names: [string[], string[]]; shapes: [unknown, unknown] };
    expect(shapes.names[0].sort()).toEqual(shapes.names[1].sort());
    expect(shapes.names[0].length).toBeGreaterThan(300);
    expect(shapes.shapes[0]).toEqual(shapes.shapes[1]);
  });

  it("finds the files the package finds beside its own (the native CRC32C, the WebAssembly codecs) and mnemonist's LRU cache", () => {
    const data = Buffer.from('sluice '.repeat(1000));
    expect(bundled.crc32c(data)).toBe(client.crc32c(data));
    const lz4 = bundled.compressionsAlgorithms.lz4;
    expect(Buffer.from(lz4.decompressSync(lz4.compressSync(data)))).toEqual(data);
    expect(Buffer.from(bundled.compressionsAlgorithms.snappy.compressSync(data))).toEqual(Buffer.from(client.compressionsAlgorithms.snappy.compressSync(data)));
    // murmur2 keeps the hashes of string keys in mnemonist's LRUCache: a second call answers from it.
    for (let i = 0; i < 2; i++) expect(bundled.murmur2('order-1', true)).toBe(client.murmur2('order-1', true));
  });

  it('validates options as the package does: every option schema of the client, through bin/lazy-ajv.js, gives the same verdict and errors', () => {
    // What Sluice builds (a reader's consumer options), and what it must refuse.
    const built = clientOptions(loadConfig({}, { kafkaBrokers: '127.0.0.1:9092' }), { name: 'check', retry: retryPolicies.reader });
    const inputs: unknown[] = [
      built,
      { ...built, groupId: 'sluice-check', autocommit: false },
      { ...built, groupId: 'sluice-check', sessionTimeout: 1000, heartbeatInterval: 5000 },
      { ...built, groupId: '', sessionTimeout: -1, retries: 'many', bootstrapBrokers: [] },
      { topics: ['t'], partitions: { t: [0, 1] }, timestamp: -1n },
      { topics: [1], timestamp: 1 },
      {},
      null,
      'text',
    ];
    const validators = Object.keys(client).filter((name) => name.endsWith('OptionsValidator') || name === 'groupIdAndOptionsValidator' || name === 'groupOptionsValidator');
    expect(validators.length).toBeGreaterThan(35);
    type Validate = ((data: unknown) => boolean) & { errors?: unknown };
    for (const name of validators) {
      const lazy = (bundled as unknown as Record<string, Validate>)[name]!;
      const eager = (client as unknown as Record<string, Validate>)[name]!;
      for (const input of inputs) {
        const verdict = lazy(input);
        expect([verdict, lazy.errors], `${name}(${JSON.stringify(input, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))})`).toEqual([eager(input), eager.errors]);
      }
    }
  });

  it('describes what it was built from: the client and its dependencies by version, our files it holds by hash', () => {
    const installed = JSON.parse(readFileSync(join(PROJECT_ROOT, 'node_modules/@platformatic/kafka/package.json'), 'utf8')) as { version: string };
    expect(manifest.packages['node_modules/@platformatic/kafka']).toBe(installed.version);
    expect(Object.keys(manifest.files).sort()).toEqual(['bin/lazy-ajv.js', 'scripts/bundle-client.js']);
    expect(runtime.readManifest(pathToFileURL(bundle))).toEqual(manifest);
  });

  it('is used only while its manifest matches what is installed; otherwise, or without one, the package is', () => {
    // A made-up project: one package and one file of ours, and a "bundle" that is only its manifest line.
    const root = join(dir, 'project');
    mkdirSync(join(root, 'node_modules/some-package'), { recursive: true });
    mkdirSync(join(root, 'bin'), { recursive: true });
    writeFileSync(join(root, 'node_modules/some-package/package.json'), JSON.stringify({ version: '1.2.3' }));
    writeFileSync(join(root, 'bin/ours.js'), 'export {};\n');
    const rootUrl = pathToFileURL(`${root}/`);
    const write = (m: Manifest) => {
      mkdirSync(join(root, runtime.BUNDLE_PATH, '..'), { recursive: true });
      writeFileSync(join(root, runtime.BUNDLE_PATH), `${runtime.MANIFEST_PREFIX}${JSON.stringify(m)}\nexport {};\n`);
    };
    const current = { packages: { 'node_modules/some-package': '1.2.3' }, files: { 'bin/ours.js': runtime.sha256('export {};\n') } };

    expect(runtime.currentBundle(rootUrl)).toBeUndefined();
    write(current);
    expect(runtime.currentBundle(rootUrl)).toBe(pathToFileURL(join(root, runtime.BUNDLE_PATH)).href);
    write({ ...current, packages: { 'node_modules/some-package': '1.2.4' } });
    expect(runtime.currentBundle(rootUrl)).toBeUndefined();
    write({ ...current, packages: { ...current.packages, 'node_modules/gone': '1.0.0' } });
    expect(runtime.currentBundle(rootUrl)).toBeUndefined();
    write({ ...current, files: { 'bin/ours.js': runtime.sha256('export const changed = 1;\n') } });
    expect(runtime.currentBundle(rootUrl)).toBeUndefined();
    writeFileSync(join(root, runtime.BUNDLE_PATH), 'export {};\n');
    expect(runtime.currentBundle(rootUrl)).toBeUndefined();
  });

  it("sends the client's import to the bundle when there is a current one, else to the package", () => {
    const resolved = (bundleUrl: string | undefined) =>
      execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const { registerClientHooks } = await import(${JSON.stringify(pathToFileURL(join(PROJECT_ROOT, 'bin/client-bundle.js')).href)});
           registerClientHooks(${JSON.stringify(bundleUrl ?? null)});
           process.stdout.write(import.meta.resolve('@platformatic/kafka'));`,
        ],
        { cwd: PROJECT_ROOT, encoding: 'utf8' },
      );
    expect(resolved(pathToFileURL(bundle).href)).toBe(pathToFileURL(bundle).href);
    expect(resolved(undefined)).toBe(pathToFileURL(join(PROJECT_ROOT, 'node_modules/@platformatic/kafka/dist/index.js')).href);
  });
});
