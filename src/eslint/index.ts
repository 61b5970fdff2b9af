/**
 * `idem/eslint`: lint rules for code that is not safe to run twice. A flat-config ESLint plugin;
 * ESLint itself is only a type import here, so the package needs it only where you lint.
 *
 * @example
 * ```ts
 * // eslint.config.js
 * import idem from 'idem/eslint';
 *
 * export default [idem.configs.recommended];
 * ```
 *
 * See docs/eslint.md for each rule, why it flags what it flags, and its limits.
 */
import type { ESLint, Linter, Rule } from 'eslint';
import { noBlindInsert } from './rules/no-blind-insert.js';
import { stepFetchRequiresKey } from './rules/step-fetch-requires-key.js';
import { stripeRequiresIdempotencyKey } from './rules/stripe-requires-idempotency-key.js';
import { workflowDeterminism } from './rules/workflow-determinism.js';

/** The plugin's rules, by name (without the `idem/` prefix). */
export const rules = {
  'no-blind-insert': noBlindInsert,
  'stripe-requires-idempotency-key': stripeRequiresIdempotencyKey,
  'step-fetch-requires-key': stepFetchRequiresKey,
  'workflow-determinism': workflowDeterminism,
} satisfies Record<string, Rule.RuleModule>;

/** The name of a rule of the plugin, as configured: `idem/no-blind-insert`, ... */
export type IdemRuleName = `idem/${keyof typeof rules}`;

/** The ESLint plugin: its rules, and `configs.recommended`, a flat config object that turns them all on as errors. */
export interface IdemEslintPlugin extends ESLint.Plugin {
  meta: { name: string; version: string };
  rules: typeof rules;
  configs: { recommended: Linter.Config };
}

const recommendedRules = Object.fromEntries(Object.keys(rules).map((name) => [`idem/${name}`, 'error'])) as Record<
  IdemRuleName,
  'error'
>;

/**
 * The plugin. Use `plugin.configs.recommended` in a flat config, or register `plugin` under the
 * `idem` name and pick rules.
 *
 * @example
 * ```ts
 * import { plugin } from 'idem/eslint';
 *
 * export default [
 *   { plugins: { idem: plugin }, rules: { 'idem/no-blind-insert': 'warn' } },
 * ];
 * ```
 */
export const plugin: IdemEslintPlugin = {
  meta: { name: 'idem/eslint', version: '0.1.0' },
  rules,
  configs: { recommended: {} },
};
plugin.configs.recommended = {
  name: 'idem/recommended',
  plugins: { idem: plugin },
  rules: recommendedRules,
};

export default plugin;
