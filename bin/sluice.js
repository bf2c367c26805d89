#!/usr/bin/env -S node --disable-warning=TimeoutNegativeWarning
// Sluice is TypeScript run by Node's type stripping (Node >= 22.18). npm scripts and
// npx put the project's own Node 24 (the `node` devDependency) first on PATH.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`sluice needs Node.js >= 22.18 (this is ${process.version}). Run it as \`npx sluice\` inside the project after \`npm ci\`, which provides Node 24.\n`);
  process.exit(1);
}
// Node keeps the compiled modules in its on-disk cache (os.tmpdir()/node-compile-cache, or
// NODE_COMPILE_CACHE): a command starts with a quarter less CPU, which is most of a short `sluice tail`.
const { enableCompileCache } = await import('node:module');
enableCompileCache?.();
// The Kafka client loads from its one-file bundle when that is current (bin/client-bundle.js), and its option
// validators compile on first use instead of at import (bin/lazy-ajv.js).
const { registerClientHooks } = await import('./client-bundle.js');
registerClientHooks();
await import('../cli/sluice.ts');
