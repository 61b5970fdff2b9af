#!/usr/bin/env node
// Type-checks every ```ts block of README.md and docs/*.md against the built package, so the
// docs cannot drift from the code. Run it after `npm run build`: each block becomes a module in
// .tmp/check-docs/, inside this package, where `import ... from 'idem/express'` resolves through
// the package's own exports map to dist/*.d.ts, exactly as in a user's project (strict,
// module NodeNext). A block opts out only with a reason on its fence: ```ts check-skip: <why>.
// A block of any language whose fence names a file (```json file=examples/idem-serve.json) must
// hold that file's text exactly. Errors are printed at their line in the Markdown file.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const out = join(root, '.tmp', 'check-docs');

if (!existsSync(join(root, 'dist', 'core', 'index.d.ts'))) {
  console.error('[check-docs] dist/ is missing: run `npm run build` first (the blocks are checked against it).');
  process.exit(2);
}

const pages = [
  'README.md',
  ...(existsSync(join(root, 'docs')) ? readdirSync(join(root, 'docs')) : [])
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
];

/** The fenced blocks of one page: language, the rest of the fence, first code line, code. */
function blocksOf(page) {
  const lines = readFileSync(join(root, page), 'utf8').split('\n');
  const blocks = [];
  let open;
  lines.forEach((line, index) => {
    if (open === undefined) {
      const fence = /^```(\S*)(.*)$/.exec(line);
      if (fence) open = { page, language: fence[1], info: fence[2].trim(), startLine: index + 2, code: [] };
    } else if (/^```\s*$/.test(line)) {
      blocks.push(open);
      open = undefined;
    } else open.code.push(line);
  });
  if (open !== undefined) throw new Error(`${page}:${open.startLine - 1}: a \`\`\` block is never closed`);
  return blocks;
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const files = new Map();
const problems = [];
let skipped = 0;
let filed = 0;
for (const page of pages) {
  for (const block of blocksOf(page)) {
    const file = /(?:^|\s)file=(\S+)/.exec(block.info)?.[1];
    if (file !== undefined) {
      const text = existsSync(join(root, file)) ? readFileSync(join(root, file), 'utf8') : undefined;
      if (text === undefined) problems.push(`${page}:${block.startLine - 1}: ${file} does not exist`);
      else if (text.trimEnd() !== block.code.join('\n').trimEnd()) {
        problems.push(`${page}:${block.startLine - 1}: the block differs from ${file}; copy the file into it`);
      }
      filed++;
      continue;
    }
    if (block.language !== 'ts' && block.language !== 'typescript') continue;
    if (block.info.startsWith('check-skip')) {
      if (!/^check-skip:\s*\S/.test(block.info)) {
        problems.push(`${page}:${block.startLine - 1}: check-skip needs a reason: \`\`\`ts check-skip: <why>`);
      }
      skipped++;
      continue;
    }
    const name = `${page.replace(/[^A-Za-z0-9]+/g, '_')}_L${block.startLine}.ts`;
    // `export {}` makes a block without imports a module too, so blocks never share globals.
    writeFileSync(join(out, name), `${block.code.join('\n')}\nexport {};\n`);
    files.set(name, block);
  }
}
writeFileSync(
  join(out, 'tsconfig.json'),
  JSON.stringify({
    extends: '../../tsconfig.json',
    compilerOptions: { noEmit: true, rootDir: '.', sourceMap: false, declaration: false },
    include: ['*.ts'],
  }),
);

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const result = spawnSync(process.execPath, [tsc, '-p', out, '--pretty', 'false'], { cwd: root, encoding: 'utf8' });
for (const line of `${result.stdout}${result.stderr}`.split('\n')) {
  const at = /^(?:.*[\\/])?([^\\/(]+\.ts)\((\d+),(\d+)\): (.*)$/.exec(line);
  const block = at && files.get(at[1]);
  if (block) problems.push(`${block.page}:${block.startLine + Number(at[2]) - 1}:${at[3]}: ${at[4]}`);
  else if (line.trim() !== '') problems.push(line);
}
if (result.status !== 0 && problems.length === 0) problems.push(`tsc exited with ${result.status}`);
if (problems.length > 0) {
  for (const problem of problems) console.error(`[check-docs] ${problem}`);
  console.error(`[check-docs] generated modules are in ${relative(root, out)}/`);
  process.exit(1);
}
rmSync(out, { recursive: true, force: true });
console.log(
  `[check-docs] ${files.size} TypeScript blocks in ${pages.length} pages compile against the built package` +
    (skipped > 0 ? ` (${skipped} skipped, each with its reason)` : '') +
    (filed > 0 ? `; ${filed} block${filed === 1 ? ' matches the file it shows' : 's match the files they show'}` : ''),
);
