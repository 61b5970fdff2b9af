/**
 * `npm run bench -- --only eslint`: what `idem/eslint` costs at lint time. Lints the same files
 * (the rule corpus of test/eslint/corpus, Idem's own src/workflow, src/messaging and examples/)
 * with typescript-eslint's parser under four configs: no rules (parsing and traversal only),
 * ESLint's `js.configs.recommended` alone, Idem's recommended alone, and both. Reports the median
 * milliseconds per 1,000 lines over the rounds (which take turns across the configs), after one
 * warm-up pass of each.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import js from '@eslint/js';
import { type Linter, Linter as LinterClass } from 'eslint';
import tseslint from 'typescript-eslint';
import idem from '../src/eslint/index.js';
import { type Align, table } from './report.js';

const root = new URL('..', import.meta.url).pathname;
const SOURCES = ['test/eslint/corpus', 'src/workflow', 'src/messaging', 'examples'];

export interface EslintRow {
  config: string;
  /** Median milliseconds to lint all the files once. */
  ms: number;
  msPer1000Lines: number;
}

export interface EslintReport {
  files: number;
  lines: number;
  rounds: number;
  rows: EslintRow[];
}

interface Options {
  quick: boolean;
  log: (line: string) => void;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return filesUnder(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

const base: Linter.Config = {
  files: ['**/*.ts'],
  languageOptions: { parser: tseslint.parser, ecmaVersion: 'latest', sourceType: 'module' },
};
const CONFIGS: [string, Linter.Config[]][] = [
  ['parse only (no rules)', [base]],
  ['js.configs.recommended', [base, js.configs.recommended]],
  ['idem recommended', [base, idem.configs.recommended]],
  ['js + idem recommended', [base, js.configs.recommended, idem.configs.recommended]],
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

export async function benchEslint({ quick, log }: Options): Promise<EslintReport> {
  const files = SOURCES.flatMap((dir) => filesUnder(join(root, dir))).map((path) => ({
    path,
    text: readFileSync(path, 'utf8'),
  }));
  const lines = files.reduce((sum, file) => sum + file.text.split('\n').length, 0);
  const rounds = quick ? 3 : 10;
  const linter = new LinterClass({ configType: 'flat' });
  const lintAll = (config: Linter.Config[]) => {
    for (const file of files) linter.verify(file.text, config, { filename: file.path });
  };
  // Rounds take turns across the configs, so load from elsewhere on the machine weighs on all alike.
  for (const [, config] of CONFIGS) lintAll(config); // warm-up: the parser and the rules compile once
  const times = CONFIGS.map((): number[] => []);
  for (let round = 0; round < rounds; round++) {
    CONFIGS.forEach(([, config], index) => {
      const started = performance.now();
      lintAll(config);
      times[index]?.push(performance.now() - started);
    });
  }
  const rows: EslintRow[] = CONFIGS.map(([name], index) => {
    const ms = median(times[index] ?? []);
    log(`  eslint ${name}: ${ms.toFixed(0)} ms for ${lines} lines`);
    return { config: name, ms, msPer1000Lines: (ms / lines) * 1000 };
  });
  return { files: files.length, lines, rounds, rows };
}

export function eslintSection(report: EslintReport): string {
  const byName = new Map(report.rows.map((row) => [row.config, row.msPer1000Lines]));
  const parse = byName.get('parse only (no rules)') ?? 0;
  const jsOnly = byName.get('js.configs.recommended') ?? 0;
  const both = byName.get('js + idem recommended') ?? 0;
  const out = [
    `ESLINT: lint time of ${report.files} files, ${report.lines.toLocaleString('en-US')} lines (the rule corpus, src/workflow, src/messaging, examples),`,
    `typescript-eslint's parser, median of ${report.rounds} rounds; ms / 1,000 lines.`,
    `idem's rules add ${(both - jsOnly).toFixed(1)} ms / 1,000 lines to js.configs.recommended;`,
    `rules alone (minus parsing): js ${(jsOnly - parse).toFixed(1)}, idem ${((byName.get('idem recommended') ?? 0) - parse).toFixed(1)}.`,
    '',
  ];
  const align: Align[] = ['left', 'right', 'right'];
  out.push(
    table(
      ['config', 'ms (all files)', 'ms / 1,000 lines'],
      report.rows.map((row) => [row.config, row.ms.toFixed(0), row.msPer1000Lines.toFixed(1)]),
      align,
    ),
  );
  return out.join('\n');
}
