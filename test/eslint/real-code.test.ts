// The rules over real code nobody wrote for them: Idem's own src/ and examples/, and the
// JavaScript that bullmq, pg-boss, express and DBOS ship in node_modules (job queues, SQL-heavy
// workflow engines, a web framework). The plugin must not crash on any file, and its findings must
// be exactly those recorded, each judged by reading, in real-code-findings.json: a new finding or
// a vanished one fails the test until it is judged and recorded.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Finding, lint } from './lint.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Folders linted, and how their .js files are loaded. */
const SOURCES: { dir: string; sourceType: 'module' | 'commonjs' }[] = [
  { dir: 'src', sourceType: 'module' },
  { dir: 'examples', sourceType: 'module' },
  { dir: 'node_modules/bullmq/dist/esm/classes', sourceType: 'module' },
  { dir: 'node_modules/pg-boss/src', sourceType: 'commonjs' },
  { dir: 'node_modules/express/lib', sourceType: 'commonjs' },
  { dir: 'node_modules/@dbos-inc/dbos-sdk/dist/src', sourceType: 'commonjs' },
];

interface Judged extends Finding {
  verdict: 'true positive' | 'false positive';
  why: string;
}

const judged = JSON.parse(readFileSync(new URL('./real-code-findings.json', import.meta.url), 'utf8')) as Judged[];

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return filesUnder(path);
    return /\.(ts|js|cjs|mjs)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

const id = (finding: Finding) => `${finding.file}:${finding.line} ${finding.rule}`;

describe('the recommended config over real code', () => {
  const found: Finding[] = [];
  let files = 0;
  let lines = 0;
  for (const { dir, sourceType } of SOURCES) {
    const path = join(root, dir);
    if (!existsSync(path)) throw new Error(`${dir} is missing: run npm ci`);
    for (const file of filesUnder(path)) {
      const text = readFileSync(file, 'utf8');
      files++;
      lines += text.split('\n').length;
      // ESLint ignores node_modules/ by default: name those files npm/<package>/... instead.
      const name = relative(root, file).replace(/^node_modules\//, 'npm/');
      found.push(...lint(text, name, file.endsWith('.ts') ? 'module' : sourceType));
    }
  }

  it('lints every file without a crash, and finds exactly the judged findings', () => {
    assert.ok(files > 100, `${files} files`);
    assert.deepEqual(found.map(id).sort(), judged.map(id).sort());
  });

  it('prints the judged counts', () => {
    const fp = judged.filter((finding) => finding.verdict === 'false positive').length;
    console.log(
      `real code: ${files} files, ${lines} lines, ${found.length} findings: ${found.length - fp} true positives, ${fp} false positives`,
    );
    for (const finding of judged) console.log(`  ${id(finding)}: ${finding.verdict} (${finding.why})`);
  });
});
