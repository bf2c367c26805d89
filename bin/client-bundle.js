// The Kafka client (@platformatic/kafka: its index imports every API, ~330 files, plus mnemonist's 49 and ajv's 87)
// as one file, built by scripts/bundle-client.js (npm's postinstall) into node_modules/.cache: resolving, reading
// and linking ~470 modules was most of a short command's start-up. A resolve hook sends the `@platformatic/kafka`
// import (kafka/ is its only importer) to the bundle only while the bundle's first line still describes what is
// installed (the version of every package it was built from, the hash of each of our files it holds); else, or
// without a bundle, the import goes to the package as before. node_modules itself is never changed.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
// A namespace import: a postinstall may run scripts/bundle-client.js, which imports this, on a Node without registerHooks.
import * as nodeModule from 'node:module';

export const CLIENT = '@platformatic/kafka';
/** Where the bundle lives, from the project root (removed with node_modules, which it is derived from). */
export const BUNDLE_PATH = 'node_modules/.cache/sluice/kafka-client.mjs';
/** The bundle's first line: this prefix, then its manifest as JSON. */
export const MANIFEST_PREFIX = '// sluice client bundle ';
export const PROJECT_ROOT = new URL('../', import.meta.url);

export const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/**
 * Whether `manifest` ({ packages: { 'node_modules/x': version }, files: { 'bin/y.js': sha256 } }, paths from the
 * project root) describes what is installed under `root` now.
 */
export function manifestCurrent(manifest, root = PROJECT_ROOT) {
  for (const [dir, version] of Object.entries(manifest.packages)) {
    if (JSON.parse(readFileSync(new URL(`${dir}/package.json`, root), 'utf8')).version !== version) return false;
  }
  for (const [file, hash] of Object.entries(manifest.files)) {
    if (sha256(readFileSync(new URL(file, root))) !== hash) return false;
  }
  return true;
}

/** The bundle's manifest (its first line), or undefined when there is no bundle. */
export function readManifest(bundle) {
  let fd;
  try {
    fd = openSync(bundle, 'r');
  } catch {
    return undefined;
  }
  try {
    const head = Buffer.alloc(64 * 1024);
    const line = head
      .subarray(0, readSync(fd, head, 0, head.length, 0))
      .toString('utf8')
      .split('\n', 1)[0];
    return line.startsWith(MANIFEST_PREFIX) ? JSON.parse(line.slice(MANIFEST_PREFIX.length)) : undefined;
  } finally {
    closeSync(fd);
  }
}

/** The bundle's URL when it exists and matches what is installed under `root`; undefined otherwise (use the package). */
export function currentBundle(root = PROJECT_ROOT) {
  const bundle = new URL(BUNDLE_PATH, root);
  try {
    const manifest = readManifest(bundle);
    return manifest !== undefined && manifestCurrent(manifest, root) ? bundle.href : undefined;
  } catch {
    // A package it was built from is gone, a file unreadable: the package it is.
    return undefined;
  }
}

/**
 * Called by bin/sluice.js before anything imports the client: `@platformatic/kafka` resolves to `bundle` (by
 * default the current bundle, looked for when a command first imports the client; null: none), and the package's
 * own `ajv/dist/2020.js` to bin/lazy-ajv.js (the bundle holds lazy-ajv already).
 */
export function registerClientHooks(bundle) {
  let chosen = bundle;
  const lazyAjv = new URL('./lazy-ajv.js', import.meta.url).href;
  nodeModule.registerHooks?.({
    resolve(specifier, context, nextResolve) {
      if (specifier === CLIENT) {
        if (chosen === undefined) chosen = currentBundle() ?? null;
        if (chosen) return { url: chosen, format: 'module', shortCircuit: true };
      }
      if (specifier === 'ajv/dist/2020.js' && context.parentURL?.endsWith('/@platformatic/kafka/dist/utils.js')) return { url: lazyAjv, shortCircuit: true };
      return nextResolve(specifier, context);
    },
  });
}
