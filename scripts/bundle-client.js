// Builds the Kafka client's one-file bundle (bin/client-bundle.js says why and how it is used) with esbuild, a
// devDependency: npm's postinstall runs it, as does `npm run bundle:client`. It never fails an install: without
// esbuild (npm ci --omit=dev) or on any error it says so on stderr and the client keeps loading from its package.
// Plain JavaScript for any Node that npm runs, since a postinstall may run before the project's own Node 24 is set up.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLE_PATH, CLIENT, MANIFEST_PREFIX, PROJECT_ROOT, sha256 } from '../bin/client-bundle.js';

const SELF = 'scripts/bundle-client.js';

/** The directory of the package a node_modules path belongs to (the innermost node_modules/[@scope/]name). */
function packageDir(input) {
  const parts = input.split('/');
  const at = parts.lastIndexOf('node_modules');
  return parts.slice(0, at + (parts[at + 1]?.startsWith('@') ? 3 : 2)).join('/');
}

/** Where Node looks for package `name` required from package directory `dir`: its node_modules, then those above. */
function lookups(dir, name) {
  const places = [];
  for (let base = dir; ;) {
    places.push(`${base}/node_modules/${name}`);
    const up = base.lastIndexOf('/node_modules/');
    if (up < 0) break;
    base = base.slice(0, up);
  }
  return [...places, `node_modules/${name}`];
}

/** The package directories `dir` depends on, directly or through others. */
function dependencyDirs(root, dir, found = new Set()) {
  const { dependencies = {}, optionalDependencies = {}, peerDependencies = {} } = JSON.parse(readFileSync(path.join(root, dir, 'package.json'), 'utf8'));
  for (const name of Object.keys({ ...dependencies, ...optionalDependencies, ...peerDependencies })) {
    const place = lookups(dir, name).find((candidate) => existsSync(path.join(root, candidate, 'package.json')));
    if (place !== undefined && !found.has(place)) {
      found.add(place);
      dependencyDirs(root, place, found);
    }
  }
  return found;
}

/** A CommonJS file that is in strict mode already (its directive prologue says so). */
const STRICT = /^(?:#![^\n]*\n)?(?:\s|\/\/[^\n]*\n|\/\*[\s\S]*?\*\/)*(['"])use strict\1/;

/**
 * Bundles the client's index with everything it imports into `out` (a path under `root`, the project), except
 * packages that stay outside, imported by their path from the bundle: avsc, which our own Avro codec loads too
 * (one module for both), and those with CommonJS files not in strict mode (debug, mnemonist), since everything in
 * an ES module bundle is strict. Returns the manifest written on the bundle's first line.
 */
export async function buildClientBundle(root = fileURLToPath(PROJECT_ROOT), out = path.join(root, BUNDLE_PATH)) {
  const { build } = await import('esbuild');
  const outDir = path.dirname(out);
  const fromBundle = (file) => {
    const relative = path.relative(outDir, file).split(path.sep).join('/');
    return relative.startsWith('.') ? relative : `./${relative}`;
  };
  const kept = new Set();
  const bundle = (outside) =>
    build({
      absWorkingDir: root,
      entryPoints: ['sluice:kafka-client'],
      bundle: true,
      platform: 'node',
      format: 'esm',
      write: false,
      // Functions and classes keep their names (esbuild renames some apart; an error's name can come from its class's).
      keepNames: true,
      metafile: true,
      logLevel: 'silent',
      plugins: [
        {
          name: 'sluice-client',
          setup(esbuild) {
            // The entry: the client's index, as `import ... from '@platformatic/kafka'` sees it.
            esbuild.onResolve({ filter: /^sluice:kafka-client$/ }, () => ({ path: 'kafka-client', namespace: 'sluice' }));
            esbuild.onLoad({ filter: /^kafka-client$/, namespace: 'sluice' }, () => ({ contents: `export * from '${CLIENT}';`, resolveDir: root, loader: 'js' }));
            // The client's Ajv2020 is bin/lazy-ajv.js, as the resolve hook makes it without the bundle.
            esbuild.onResolve({ filter: /^ajv\/dist\/2020\.js$/ }, (args) =>
              args.importer.split(path.sep).join('/').endsWith('/@platformatic/kafka/dist/utils.js') ? { path: path.join(root, 'bin/lazy-ajv.js') } : undefined,
            );
            // The client takes only LRUCache from mnemonist (its murmur2 partitioner's cache), and mnemonist's index
            // loads all of its 48 structures: its own entry for the one structure (mnemonist/lru-cache.js, exported to
            // require only) loads 5 files. The same class, the one module both entries export. Should the client take
            // more from mnemonist, this build stops (no such export) and the client loads from its package.
            esbuild.onResolve({ filter: /^mnemonist$/ }, (args) => ({ path: 'mnemonist-lru-cache', namespace: 'sluice', pluginData: path.dirname(args.importer) }));
            esbuild.onLoad({ filter: /^mnemonist-lru-cache$/, namespace: 'sluice' }, (args) => ({
              contents: "export const LRUCache = require('mnemonist/lru-cache.js');",
              resolveDir: args.pluginData,
              loader: 'js',
            }));
            // A package's files are all inside or all outside; one outside is imported by the path its name resolves to.
            esbuild.onResolve({ filter: /^[^./]/ }, async (args) => {
              if (args.pluginData === 'resolving' || args.path.startsWith('node:')) return undefined;
              const resolved = await esbuild.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'resolving' });
              if (resolved.errors.length > 0) return { errors: resolved.errors };
              if (resolved.external) return undefined;
              const dir = packageDir(path.relative(root, resolved.path).split(path.sep).join('/'));
              if (!outside(dir)) return { path: resolved.path };
              kept.add(dir);
              return { path: fromBundle(resolved.path), external: true };
            });
            // A module that finds files beside itself (the client's createRequire for its optional native CRC32C,
            // the WebAssembly of @platformatic/wasm-utils) keeps its own URL in the bundle: relative to the bundle,
            // so a copy of node_modules (cp -al) keeps a working bundle.
            esbuild.onLoad({ filter: /\.[cm]?js$/, namespace: 'file' }, (args) => {
              const text = readFileSync(args.path, 'utf8');
              const unsupported = /import\.meta\.(?!url\b)\w+|\b__dirname\b|\b__filename\b/.exec(text);
              if (unsupported) throw new Error(`${args.path} uses ${unsupported[0]}, which the bundle cannot keep`);
              if (!text.includes('import.meta.url')) return undefined;
              return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(fromBundle(args.path))}, import.meta.url).href`), loader: 'js' };
            });
          },
        },
      ],
      // The CommonJS packages inside (ajv, fastq) require Node's built-in modules.
      banner: { js: "import { createRequire as sluiceCreateRequire } from 'node:module';\nconst require = sluiceCreateRequire(import.meta.url);" },
    });
  const shared = (dir) => dir.endsWith('node_modules/avsc');
  const first = await bundle(shared);
  const sloppy = new Set(
    Object.entries(first.metafile.inputs).flatMap(([input, { format }]) => (format === 'cjs' && !STRICT.test(readFileSync(path.join(root, input), 'utf8')) ? [packageDir(input)] : [])),
  );
  let result = first;
  if (sloppy.size > 0) {
    kept.clear();
    result = await bundle((dir) => shared(dir) || sloppy.has(dir));
  }
  const inside = new Set();
  const files = { [SELF]: sha256(readFileSync(path.join(root, SELF))) };
  for (const input of Object.keys(result.metafile.inputs)) {
    if (input.startsWith('sluice:')) continue;
    if (input.startsWith('node_modules/') || input.includes('/node_modules/')) inside.add(packageDir(input));
    else files[input] = sha256(readFileSync(path.join(root, input)));
  }
  // A package outside that uses one inside would load a second copy of it.
  for (const dir of kept) {
    const shadowed = [...dependencyDirs(root, dir)].find((dependency) => inside.has(dependency));
    if (shadowed !== undefined) throw new Error(`${dir}, kept outside, depends on ${shadowed}, which is inside`);
  }
  // Those outside too: the bundle imports each by the path its version resolves to.
  const packages = Object.fromEntries([...inside, ...kept].map((dir) => [dir, JSON.parse(readFileSync(path.join(root, dir, 'package.json'), 'utf8')).version]));
  const manifest = { packages, files };
  mkdirSync(outDir, { recursive: true });
  // Written aside and renamed: a command starting meanwhile reads the old bundle or the new one, whole.
  const temporary = `${out}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, `${MANIFEST_PREFIX}${JSON.stringify(manifest)}\n${result.outputFiles[0].text}`);
    renameSync(temporary, out);
  } finally {
    rmSync(temporary, { force: true });
  }
  return manifest;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const started = performance.now();
    const { packages } = await buildClientBundle();
    process.stdout.write(`sluice: bundled the Kafka client (${Object.keys(packages).length} packages) in ${Math.round(performance.now() - started)} ms\n`);
  } catch (error) {
    const reason = error?.code === 'ERR_MODULE_NOT_FOUND' ? 'esbuild is not installed (a devDependency)' : error instanceof Error ? error.message : String(error);
    process.stderr.write(`sluice: the Kafka client will load from its package (no bundle: ${reason})\n`);
  }
}
