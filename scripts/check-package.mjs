#!/usr/bin/env node
// Checks the published shape of the package after `npm run build`: every subpath in the exports
// map has its JavaScript and its type declarations, loads by its public name, and exports
// something; and the bin entry exists. Importing by name goes through the exports map as a user would.
import { existsSync, readFileSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
const problems = [];
for (const [subpath, target] of Object.entries(pkg.exports)) {
  if (subpath === './package.json') continue;
  for (const file of [target.types, target.default]) {
    if (!existsSync(new URL(file, root))) problems.push(`${subpath}: ${file} is missing`);
  }
  const name = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
  try {
    const mod = await import(name);
    if (Object.keys(mod).length === 0) problems.push(`${name} exports nothing`);
  } catch (error) {
    problems.push(`${name} does not load: ${error.message}`);
  }
}
for (const bin of Object.values(pkg.bin ?? {})) {
  if (!existsSync(new URL(bin, root))) problems.push(`bin ${bin} is missing`);
}
if (problems.length > 0) {
  for (const problem of problems) console.error(`[check-package] ${problem}`);
  process.exit(1);
}
console.log(`[check-package] ${Object.keys(pkg.exports).length} export paths load with their types`);
