#!/usr/bin/env node
// The second build step, after tsc: the CommonJS face of the ES modules in dist/, in dist/cjs/.
//   1. For each subpath of the exports map, dist/cjs/<path>.cjs, one line: the ES module itself,
//      `module.exports = require('<its .js>')`. Node >= 20.19 loads an ES module with require(), so
//      CommonJS callers get the very module instance that `import` gets: one copy of the code.
//   2. For every dist/**/*.d.ts, dist/cjs/<path>.d.cts: the same text with relative `./x.js`
//      imports renamed `./x.cjs`. TypeScript reads a .d.cts as CommonJS, so a CommonJS project
//      on `module: node16` imports it without TS1479. (A .d.cts that only re-exported the .d.ts
//      would raise TS1479 inside itself, hidden only by `skipLibCheck`.) The CLI is left out: it
//      is a program, not an import.
// Where each file goes is derived from the exports map by scripts/build-exports.mjs.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { cjsPathOf, esmEntriesOf } from './build-exports.mjs';

const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const dist = join(root, 'dist');
const cjs = join(dist, 'cjs');
/** Folders of dist/ that get no CommonJS face: the output itself and the CLI. */
const SKIPPED = new Set([cjs, join(dist, 'cli')]);
/** A relative module specifier in a declaration: `from './x.js'`, `import('./x.js')`. */
const RELATIVE_JS = /(['"])(\.\.?\/[^'"]*?)\.js\1/g;

function declarationsUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return SKIPPED.has(path) ? [] : declarationsUnder(path);
    return entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Doc comments keep their `./x.js` examples: only code lines are rewritten. */
function isCommentLine(line) {
  return /^\s*(\*|\/\*|\/\/)/.test(line);
}

rmSync(cjs, { recursive: true, force: true });
const written = new Set();
const declarations = declarationsUnder(dist);
if (declarations.length === 0) {
  throw new Error('[build-cjs] dist/ holds no .d.ts: run tsc -p tsconfig.build.json first');
}
for (const file of declarations) {
  const target = join(cjs, relative(dist, file)).replace(/\.d\.ts$/, '.d.cts');
  const text = readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => (isCommentLine(line) ? line : line.replace(RELATIVE_JS, '$1$2.cjs$1')))
    .join('\n');
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, text);
  written.add(target);
}

// Every relative import of a .d.cts must land on another .d.cts: a skipped folder imported
// from a public one would otherwise show up only as a type error in a user's project.
const problems = [];
for (const file of written) {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (isCommentLine(line)) continue;
    for (const [, , specifier] of line.matchAll(/(['"])(\.\.?\/[^'"]*)\1/g)) {
      const declaration = join(dirname(file), specifier).replace(/\.cjs$/, '.d.cts');
      if (!written.has(declaration)) problems.push(`${relative(root, file)} imports ${specifier}, which has no .d.cts`);
    }
  }
}

for (const [subpath, esm] of esmEntriesOf(pkg)) {
  const entry = join(root, cjsPathOf(esm.default));
  let specifier = posix.relative(posix.dirname(cjsPathOf(esm.default)), esm.default);
  if (!specifier.startsWith('.')) specifier = `./${specifier}`;
  const name = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
  mkdirSync(dirname(entry), { recursive: true });
  writeFileSync(
    entry,
    `'use strict';\n// ${name} for require(): the ES module itself (Node >= 20.19 loads it with require).\n` +
      `module.exports = require('${specifier}');\n`,
  );
  if (!written.has(join(root, cjsPathOf(esm.types)))) problems.push(`${subpath}: ${esm.types} was not built`);
}

if (problems.length > 0) {
  for (const problem of problems) console.error(`[build-cjs] ${problem}`);
  process.exit(1);
}
console.log(`[build-cjs] dist/cjs: ${esmEntriesOf(pkg).length} CommonJS entries, ${written.size} .d.cts`);
