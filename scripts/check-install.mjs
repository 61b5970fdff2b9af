#!/usr/bin/env node
// Installs the package the way a user does and runs it there. CI runs it after `npm run build`:
//   1. `npm pack`, and a check that the tarball holds every file the exports map and bin name;
//   2. `npm install <tarball>` into an empty temporary project, from the npm registry through
//      npm's own cache, with no other package: better-sqlite3 comes as an optional dependency;
//   3. there, `npx idem demo --exit`: SQLite, no server, no extra step; it must print the result
//      table with one charge per payment and exit 0;
//   4. there, an import of every subpath: each loads without a driver or framework, except the
//      ones that name their framework in the error (`idem/hono`, `idem/nest`);
//   5. in a second project installed with `--omit=optional` (no SQLite driver, no commander or
//      cli-progress), `idem demo` must fail in one line that names `npm i commander cli-progress`;
//      with those two added, in one line that names `npm i better-sqlite3@12`, not a server to check.
// Prints how long each step took. IDEM_INSTALL_KEEP=1 keeps the temporary projects.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
/** Subpaths that need their framework installed: the package whose absence the import must name. */
const NEEDS_FRAMEWORK = { './hono': 'hono', './nest': '@nestjs/common' };

if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) {
  console.error('[check-install] dist/ is missing: run `npm run build` first (the tarball is packed from it).');
  process.exit(2);
}

// `npm run` passes its own settings down as npm_* variables; the user's npm sees none of them.
const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
const work = mkdtempSync(join(tmpdir(), 'idem-install-'));
const problems = [];
const started = performance.now();

function step(label, command, args, options = {}) {
  const begin = performance.now();
  const result = spawnSync(command, args, { env, encoding: 'utf8', timeout: 300_000, ...options });
  const seconds = ((performance.now() - begin) / 1000).toFixed(1);
  console.log(`[check-install] ${label}: ${seconds} s`);
  if (result.error) problems.push(`${label}: ${result.error.message}`);
  return result;
}

function project(name) {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  return dir;
}

try {
  // 1. The tarball, as `npm publish` would send it (the build already ran: skip prepack).
  const pack = step('npm pack', 'npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], {
    cwd: root,
  });
  if (pack.status !== 0) throw new Error(`npm pack failed:\n${pack.stderr}`);
  const [packed] = JSON.parse(pack.stdout);
  const tarball = join(work, packed.filename);
  const inTarball = new Set(packed.files.map((file) => file.path));
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    const files = typeof target === 'string' ? [target] : [target.types, target.default];
    for (const file of files) {
      if (!inTarball.has(file.replace(/^\.\//, ''))) problems.push(`the tarball lacks ${file} (${subpath})`);
    }
  }
  for (const bin of Object.values(pkg.bin)) {
    if (!inTarball.has(bin.replace(/^\.\//, ''))) problems.push(`the tarball lacks the bin ${bin}`);
  }

  // 2. `npm install idem` in an empty project.
  const app = project('app');
  const install = step(
    'npm install <tarball> (builds better-sqlite3 where no prebuilt binary is reachable)',
    'npm',
    ['install', tarball, '--no-audit', '--no-fund', '--loglevel=error'],
    { cwd: app },
  );
  if (install.status !== 0) throw new Error(`npm install failed:\n${install.stderr}`);
  if (!existsSync(join(app, 'node_modules', 'better-sqlite3', 'package.json'))) {
    problems.push('npm install idem did not install better-sqlite3: SQLite, the default store, would not work');
  }

  // 3. The demo, on SQLite, from the installed bin.
  const demo = step(
    'npx idem demo --exit',
    'npx',
    ['--no-install', 'idem', 'demo', '--exit', '--port', '0', '--api-port', '0'],
    {
      cwd: app,
      timeout: 120_000,
    },
  );
  if (demo.status !== 0) problems.push(`idem demo --exit exited ${demo.status}:\n${demo.stderr}${demo.stdout}`);
  else if (!/through idem serve/.test(demo.stdout) || !/exactly one per payment/.test(demo.stdout)) {
    problems.push(`idem demo --exit did not print the result table with one charge per payment:\n${demo.stdout}`);
  } else console.log(demo.stdout.trim().split('\n').at(-1));

  // 4. Every subpath, imported by name as a user's code does.
  for (const subpath of Object.keys(pkg.exports)) {
    if (subpath === './package.json') continue;
    const name = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
    const script = `const m = await import(${JSON.stringify(name)}); if (Object.keys(m).length === 0) throw new Error('exports nothing');`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app, env, encoding: 'utf8' });
    const framework = NEEDS_FRAMEWORK[subpath];
    if (framework === undefined && run.status !== 0) problems.push(`import('${name}') failed:\n${run.stderr}`);
    if (framework !== undefined && !run.stderr.includes(`Cannot find package '${framework}'`)) {
      problems.push(`import('${name}') without ${framework} should fail naming it; got: ${run.stderr || 'no error'}`);
    }
  }
  console.log(`[check-install] ${Object.keys(pkg.exports).length - 1} subpaths imported by name`);

  // 5. Without the optional dependencies (the CLI's packages, the SQLite driver): each error names the install to run.
  const bare = project('app-without-optional');
  const omit = step(
    'npm install <tarball> --omit=optional',
    'npm',
    ['install', tarball, '--omit=optional', '--no-audit', '--no-fund', '--loglevel=error'],
    { cwd: bare },
  );
  if (omit.status !== 0) throw new Error(`npm install --omit=optional failed:\n${omit.stderr}`);
  const demoArgs = ['--no-install', 'idem', 'demo', '--exit', '--port', '0', '--api-port', '0'];
  const noCli = step('npx idem demo without commander and cli-progress', 'npx', demoArgs, {
    cwd: bare,
    timeout: 60_000,
  });
  const noCliLine = noCli.stderr.trim();
  if (noCli.status !== 1 || !noCliLine.includes('run npm i commander cli-progress') || noCliLine.includes('\n')) {
    problems.push(
      `idem demo without commander should exit 1 in one line naming npm i commander cli-progress; got ${noCli.status}: ${noCliLine}`,
    );
  } else console.log(noCliLine);
  const cli = step(
    'npm install commander cli-progress',
    'npm',
    [
      'install',
      `commander@${pkg.optionalDependencies.commander}`,
      `cli-progress@${pkg.optionalDependencies['cli-progress']}`,
      // Without it, npm would install the optional dependencies it left out before: SQLite's driver too.
      '--omit=optional',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
    ],
    { cwd: bare },
  );
  if (cli.status !== 0) throw new Error(`npm install commander cli-progress failed:\n${cli.stderr}`);
  const missing = step('npx idem demo without better-sqlite3', 'npx', demoArgs, { cwd: bare, timeout: 60_000 });
  const line = missing.stderr.trim();
  if (missing.status !== 1 || !line.includes('run npm i better-sqlite3@12') || /server is running/.test(line)) {
    problems.push(
      `idem demo without better-sqlite3 should exit 1 naming npm i better-sqlite3@12; got ${missing.status}: ${line}`,
    );
  } else console.log(line);
} catch (error) {
  problems.push(error.message);
} finally {
  if (process.env.IDEM_INSTALL_KEEP) console.log(`[check-install] kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

const total = ((performance.now() - started) / 1000).toFixed(1);
if (problems.length > 0) {
  for (const problem of problems) console.error(`[check-install] ${problem}`);
  process.exit(1);
}
console.log(`[check-install] the packed package installs and runs as a user gets it (${total} s)`);
