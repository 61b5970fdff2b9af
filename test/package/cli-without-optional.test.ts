// The idem command's own packages (commander, cli-progress) are optional dependencies, so that
// `npm i idem --omit=optional` gives a library without them. The command then says, in one line,
// which `npm i` to run, instead of a module-not-found stack trace. The built package is copied to
// a temporary folder with no node_modules above it, as after --omit=optional. Needs `npm run build` first.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first.');
const copies: string[] = [];
after(() => {
  for (const copy of copies) rmSync(copy, { recursive: true, force: true });
});

/** A copy of the built package with only `installed` of the repository's packages beside it. */
function packageWith(installed: readonly string[]): string {
  const copy = mkdtempSync(join(tmpdir(), 'idem-no-optional-'));
  copies.push(copy);
  cpSync(join(root, 'dist'), join(copy, 'dist'), { recursive: true });
  writeFileSync(join(copy, 'package.json'), JSON.stringify({ name: 'idem', version: '0.0.0', type: 'module' }));
  mkdirSync(join(copy, 'node_modules'));
  for (const name of installed) symlinkSync(join(root, 'node_modules', name), join(copy, 'node_modules', name), 'dir');
  return copy;
}

function idem(copy: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [join(copy, 'dist', 'cli', 'main.js'), ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const ONE_LINE =
  /^idem: the idem command needs commander and cli-progress, .*run npm i commander cli-progress where idem is installed, then try again\.\n$/;

describe('the idem command installed without its optional dependencies', () => {
  it('says in one line to run npm i commander cli-progress when neither is installed', () => {
    const { status, stdout, stderr } = idem(packageWith([]), '--version');
    assert.equal(status, 1);
    assert.equal(stdout, '');
    assert.match(stderr, ONE_LINE);
  });

  it('says the same when commander is there but cli-progress is not', () => {
    const { status, stderr } = idem(packageWith(['commander']), 'serve', '--help');
    assert.equal(status, 1);
    assert.match(stderr, ONE_LINE);
  });

  it('runs when both are installed', () => {
    const { status, stdout } = idem(packageWith(['commander', 'cli-progress']), '--version');
    assert.equal(status, 0);
    assert.equal(stdout, '0.0.0\n');
  });
});
