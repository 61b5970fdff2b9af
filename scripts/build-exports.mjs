#!/usr/bin/env node
// The package.json fields that CommonJS code and TypeScript's `moduleResolution: node` (node10)
// read, derived from one list: the ES module entries of the exports map (each subpath's `types`
// and `default`). A new subpath needs only those two lines, then `npm run sync-exports`:
//   - each subpath gets a `require` block before them, pointing at dist/cjs/ (scripts/build-cjs.mjs):
//     { "types": "./dist/cjs/<path>.d.cts", "default": "./dist/cjs/<path>.cjs" };
//   - `typesVersions` maps `idem/<name>` to that .d.cts, for node10, which ignores `exports`;
//   - `main` and `types` name the CommonJS root entry and its .d.cts, for tools that predate `exports`.
// `node scripts/build-exports.mjs` rewrites those fields in package.json; scripts/check-package.mjs
// fails when they differ from what this derives.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ESM_DIR = './dist/';
const CJS_DIR = './dist/cjs/';

/** Where the CommonJS face of an ES module file lives: ./dist/a/b.js -> ./dist/cjs/a/b.cjs, .d.ts -> .d.cts. */
export function cjsPathOf(esmPath) {
  if (!esmPath.startsWith(ESM_DIR) || !/\.(d\.ts|js)$/.test(esmPath)) {
    throw new Error(`[build-exports] ${esmPath}: an ES module entry must be a .js or .d.ts under ${ESM_DIR}`);
  }
  const path = esmPath.slice(ESM_DIR.length);
  return CJS_DIR + path.replace(/\.d\.ts$/, '.d.cts').replace(/\.js$/, '.cjs');
}

/** The subpaths with an ES module entry, as [subpath, { types, default }]; `./package.json` is left out. */
export function esmEntriesOf(pkg) {
  return Object.entries(pkg.exports)
    .filter(([, target]) => typeof target === 'object')
    .map(([subpath, target]) => {
      if (typeof target.types !== 'string' || typeof target.default !== 'string') {
        throw new Error(`[build-exports] exports["${subpath}"] needs "types" and "default": the ES module entry`);
      }
      return [subpath, { types: target.types, default: target.default }];
    });
}

/** The fields this script owns, as they must read for the exports map's ES module entries. */
export function derivedFields(pkg) {
  const entries = new Map(esmEntriesOf(pkg));
  const root = entries.get('.');
  if (root === undefined) throw new Error('[build-exports] exports["."] is missing');
  const exports = {};
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    const esm = entries.get(subpath);
    exports[subpath] =
      esm === undefined
        ? target
        : { require: { types: cjsPathOf(esm.types), default: cjsPathOf(esm.default) }, ...esm };
  }
  const versions = {};
  for (const [subpath, esm] of entries) {
    if (subpath !== '.') versions[subpath.slice(2)] = [cjsPathOf(esm.types).slice(2)];
  }
  return {
    main: cjsPathOf(root.default),
    types: cjsPathOf(root.types),
    typesVersions: { '*': versions },
    exports,
  };
}

/** package.json with the derived fields in place; new ones go just before `exports`. */
export function syncedPackage(pkg) {
  const fields = derivedFields(pkg);
  const synced = {};
  for (const [name, value] of Object.entries(pkg)) {
    if (name === 'exports') {
      for (const [field, derived] of Object.entries(fields)) if (!(field in pkg)) synced[field] = derived;
    }
    synced[name] = name in fields ? fields[name] : value;
  }
  return synced;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = new URL('../package.json', import.meta.url);
  const before = readFileSync(file, 'utf8');
  const after = `${JSON.stringify(syncedPackage(JSON.parse(before)), null, 2)}\n`;
  if (after === before) console.log('[build-exports] package.json is in sync with its exports map');
  else {
    writeFileSync(file, after);
    console.log('[build-exports] package.json: require blocks, typesVersions, main and types written');
  }
}
