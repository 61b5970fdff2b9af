#!/usr/bin/env node
// Checks the published shape of the package after `npm run build`: every subpath in the exports
// map has its JavaScript and its type declarations, for import and for require; it loads by its
// public name both ways, exports something, and require() gives the very module that import gives
// (one copy of the code, so no dual-package hazard); the fields derived from the exports map
// (require blocks, typesVersions, main, types) are in sync; and the bin entry exists. Loading by
// name goes through the exports map as a user's code does.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isDeepStrictEqual } from 'node:util';
import { derivedFields } from './build-exports.mjs';

const root = new URL('..', import.meta.url);
const require = createRequire(root);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
const problems = [];

const derived = derivedFields(pkg);
for (const [field, value] of Object.entries(derived)) {
  if (!isDeepStrictEqual(pkg[field], value)) {
    problems.push(`package.json "${field}" does not follow the exports map: run \`npm run sync-exports\``);
  }
}

for (const [subpath, target] of Object.entries(pkg.exports)) {
  if (subpath === './package.json') continue;
  // A missing require block is reported above, as a field out of sync.
  const files = [target.types, target.default, target.require?.types, target.require?.default];
  for (const file of files.filter((file) => file !== undefined)) {
    if (!existsSync(new URL(file, root))) problems.push(`${subpath}: ${file} is missing`);
  }
  const name = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
  try {
    const imported = await import(name);
    if (Object.keys(imported).length === 0) problems.push(`${name} exports nothing`);
    const required = require(name);
    const differ = Object.keys(imported).filter((key) => required[key] !== imported[key]);
    // Node marks the namespace of an ES module with a default export `__esModule` for require(),
    // so that transpiled CommonJS code finds `default`: the same module, one more key.
    const requiredKeys = Object.keys(required).filter((key) => key !== '__esModule');
    if (differ.length > 0 || requiredKeys.length !== Object.keys(imported).length) {
      problems.push(`require('${name}') is not the module import('${name}') gives (differs in ${differ.join(', ')})`);
    }
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
console.log(
  `[check-package] ${Object.keys(pkg.exports).length} export paths load with their types, by import and by require`,
);
