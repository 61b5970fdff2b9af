// Jest runs this folder's tests on Idem's build (dist/), each `import 'idem/...'` resolved through
// the package's exports map as it is in a project that installed Idem. In your own project none of
// this mapping is needed.
const { join } = require('node:path');
const root = join(__dirname, '..', '..');
const { exports: subpaths } = require(join(root, 'package.json'));

const moduleNameMapper = {};
for (const [subpath, target] of Object.entries(subpaths)) {
  if (typeof target !== 'object' || typeof target.default !== 'string') continue;
  const name = `idem${subpath.slice(1)}`.replace(/[/.]/g, (char) => `\\${char}`);
  moduleNameMapper[`^${name}$`] = join(root, target.default);
}

module.exports = {
  rootDir: __dirname,
  testMatch: ['<rootDir>/*.test.mjs'],
  testEnvironment: 'node',
  // Idem's files are ES modules already: nothing to transform.
  transform: {},
  moduleNameMapper,
};
