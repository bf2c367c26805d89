#!/usr/bin/env -S node --disable-warning=TimeoutNegativeWarning
// Sluice is TypeScript run by Node's type stripping (Node >= 22.18). npm scripts and
// npx put the project's own Node 24 (the `node` devDependency) first on PATH.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`sluice needs Node.js >= 22.18 (this is ${process.version}). Run it as \`npx sluice\` inside the project after \`npm ci\`, which provides Node 24.\n`);
  process.exit(1);
}
await import('../cli/sluice.ts');
