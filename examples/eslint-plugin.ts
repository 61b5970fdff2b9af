/**
 * `idem/eslint` on a small service: an Express route, a Stripe refund and a workflow, linted with
 * the plugin's recommended config. Prints each finding and the suggestion ESLint would offer,
 * and exits non-zero if the findings are not the four this code is known to hold.
 *
 * Run: npx tsx examples/eslint-plugin.ts
 */
import { Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import idem from '../src/eslint/index.js';

const sample = `
app.post('/orders', async (req, res) => {
  const { rows } = await pool.query('INSERT INTO orders (customer_id) VALUES ($1) RETURNING id', [req.body.customer]);
  res.status(201).json(rows[0]);
});

app.post('/orders/:id/refund', async (req, res) => {
  res.json(await stripe.refunds.create({ payment_intent: req.body.paymentIntent }));
});

export const order = workflows.define('order', async (ctx, input) => {
  const startedAt = Date.now();
  await ctx.step('label', (step) => fetch('https://labels.example/v1', { method: 'POST', body: input.id }));
  await ctx.step('charge', (step) =>
    stripe.paymentIntents.create({ amount: input.cents, currency: 'usd' }, { idempotencyKey: step.key }),
  );
  return startedAt;
});
`;

const linter = new Linter({ configType: 'flat' });
const messages = linter.verify(
  sample,
  [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, idem.configs.recommended],
  { filename: 'service.ts' },
);

for (const message of messages) {
  console.log(`service.ts:${message.line}:${message.column}  ${message.ruleId}`);
  console.log(`  ${message.message}`);
  for (const suggestion of message.suggestions ?? []) console.log(`  suggestion: ${suggestion.desc}`);
}

const expected = [
  'idem/no-blind-insert',
  'idem/stripe-requires-idempotency-key',
  'idem/workflow-determinism',
  'idem/step-fetch-requires-key',
];
const found = messages.map((message) => message.ruleId);
if (JSON.stringify(found) !== JSON.stringify(expected)) {
  console.error(`expected ${expected.join(', ')}; found ${found.join(', ')}`);
  process.exit(1);
}
console.log(`\n${messages.length} findings, one per rule, as expected`);
