// The proof of the rules on realistic code: every file of test/eslint/corpus/ is linted with the
// recommended config, and the reports must be exactly the lines marked `expect` (true positives)
// and `fp` (false positives judged harmless on reading); lines marked `missed` are the known false
// negatives and must stay unreported. Prints the counts per rule.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Finding, lint } from './lint.js';

const corpus = fileURLToPath(new URL('./corpus/', import.meta.url));
const MARKER = /\/\/ (expect|missed|fp): (idem\/[\w-]+)/;

interface Marked extends Finding {
  kind: 'expect' | 'missed' | 'fp';
}

function markersOf(text: string, file: string): Marked[] {
  return text.split('\n').flatMap((line, index) => {
    const match = MARKER.exec(line);
    return match === null
      ? []
      : [{ file, line: index + 1, rule: match[2] as string, kind: match[1] as Marked['kind'] }];
  });
}

const id = (finding: Finding) => `${finding.file}:${finding.line} ${finding.rule}`;

describe('the recommended config over the corpus', () => {
  const files = readdirSync(corpus).filter((name) => name.endsWith('.ts'));
  const marked: Marked[] = [];
  const found: Finding[] = [];
  for (const file of files) {
    const text = readFileSync(join(corpus, file), 'utf8');
    marked.push(...markersOf(text, file));
    found.push(...lint(text, file));
  }
  const foundIds = new Set(found.map(id));
  const markedById = new Map(marked.map((mark) => [id(mark), mark]));

  it('reports exactly the lines marked expect or fp, and none marked missed', () => {
    const unmarked = found.filter((finding) => !['expect', 'fp'].includes(markedById.get(id(finding))?.kind ?? ''));
    const notFound = marked.filter((mark) => mark.kind !== 'missed' && !foundIds.has(id(mark)));
    const missedFound = marked.filter((mark) => mark.kind === 'missed' && foundIds.has(id(mark)));
    assert.deepEqual(unmarked.map(id), [], 'reports on lines not marked expect/fp');
    assert.deepEqual(notFound.map(id), [], 'marked lines not reported');
    assert.deepEqual(missedFound.map(id), [], 'lines marked missed are now found: mark them expect');
  });

  it('prints true positives, false positives and false negatives per rule', () => {
    const rules = [...new Set(marked.map((mark) => mark.rule))].sort();
    const rows = rules.map((rule) => {
      const count = (kind: Marked['kind']) => marked.filter((mark) => mark.rule === rule && mark.kind === kind).length;
      return { rule, tp: count('expect'), fp: count('fp'), fn: count('missed') };
    });
    const lines = files.reduce((sum, file) => sum + readFileSync(join(corpus, file), 'utf8').split('\n').length, 0);
    console.log(`corpus: ${files.length} files, ${lines} lines, ${found.length} reports`);
    for (const row of rows)
      console.log(`  ${row.rule}: ${row.tp} true positives, ${row.fp} false positives, ${row.fn} false negatives`);
    const total = rows.reduce((sum, row) => ({ tp: sum.tp + row.tp, fp: sum.fp + row.fp, fn: sum.fn + row.fn }), {
      tp: 0,
      fp: 0,
      fn: 0,
    });
    console.log(
      `  all: ${total.tp} TP, ${total.fp} FP, ${total.fn} FN; precision ${(total.tp / (total.tp + total.fp)).toFixed(2)}, recall ${(total.tp / (total.tp + total.fn)).toFixed(2)}`,
    );
    // The false-positive rate the rules are held to: at most one report in ten.
    assert.ok(total.fp * 10 <= total.tp + total.fp, `too many false positives: ${total.fp} of ${total.tp + total.fp}`);
    assert.ok(
      rows.every((row) => row.tp > 0),
      'every rule has at least one true positive in the corpus',
    );
  });
});
