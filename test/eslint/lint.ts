/** Lints text with the plugin's recommended config and typescript-eslint's parser, as a user's flat config would. */
import { type Linter, Linter as LinterClass } from 'eslint';
import tseslint from 'typescript-eslint';
import idem from '../../src/eslint/index.js';

/** A report of the plugin: file, line, rule. */
export interface Finding {
  file: string;
  line: number;
  rule: string;
}

const linter = new LinterClass({ configType: 'flat' });
const configOf = (sourceType: 'module' | 'commonjs'): Linter.Config[] => [
  {
    files: ['**/*.ts', '**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: { parser: tseslint.parser, ecmaVersion: 'latest', sourceType },
    // Other tools' disable comments in real code are none of this plugin's business.
    linterOptions: { reportUnusedDisableDirectives: 'off' },
  },
  idem.configs.recommended,
];

/**
 * The plugin's findings in one file; throws on a parse error, which would hide findings. A
 * CommonJS file (`sourceType: 'commonjs'`) may `return` at its top level.
 */
export function lint(text: string, file: string, sourceType: 'module' | 'commonjs' = 'module'): Finding[] {
  const messages = linter.verify(text, configOf(sourceType), { filename: file });
  const fatal = messages.find((message) => message.fatal === true);
  if (fatal !== undefined) throw new Error(`${file}:${fatal.line}: ${fatal.message}`);
  // Disable comments naming rules this config lacks (`@typescript-eslint/...`) come back as
  // reports of those rules: only the plugin's own count.
  return messages
    .filter((message) => message.ruleId?.startsWith('idem/') === true)
    .map((message) => ({ file, line: message.line, rule: message.ruleId as string }));
}
