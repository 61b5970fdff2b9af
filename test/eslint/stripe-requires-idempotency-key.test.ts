import { rules } from '../../src/eslint/index.js';
import { ruleTester } from './rule-tester.js';

ruleTester.run('stripe-requires-idempotency-key', rules['stripe-requires-idempotency-key'], {
  valid: [
    `await stripe.paymentIntents.create({ amount: 500, currency: 'usd' }, { idempotencyKey: req.get('Idempotency-Key') });`,
    `await this.stripe.refunds.create({ charge: id }, { idempotencyKey: \`refund-\${id}\` });`,
    `await stripe.paymentIntents.confirm('pi_1', {}, { idempotencyKey: key });`,
    // Options passed as a variable, or spread in: they may carry the key.
    `await stripe.charges.create(params, requestOptions);`,
    `await stripe.transfers.create(...args);`,
    // Reads and non-money calls.
    `await stripe.paymentIntents.retrieve('pi_1');`,
    `await stripe.customers.create({ email });`,
    `await stripe.charges.list({ limit: 3 });`,
    // Not a Stripe client.
    `await payments.charges.create({ amount: 1 });`,
    `await client.refunds.create({ charge: 'ch_1' });`,
  ],
  invalid: [
    {
      code: `await stripe.paymentIntents.create({ amount: 500, currency: 'usd' });`,
      errors: [
        {
          messageId: 'missingKey',
          data: { method: 'paymentIntents.create', effect: 'charges or pays' },
          suggestions: [
            {
              messageId: 'addKey',
              output: `await stripe.paymentIntents.create({ amount: 500, currency: 'usd' }, { idempotencyKey });`,
            },
          ],
        },
      ],
    },
    {
      // In a workflow step, the suggestion passes the step's key.
      code: `await ctx.step('refund', (step) => stripe.refunds.create({ payment_intent: pi }));`,
      errors: [
        {
          messageId: 'missingKey',
          data: { method: 'refunds.create', effect: 'refunds' },
          suggestions: [
            {
              messageId: 'addKey',
              output: `await ctx.step('refund', (step) => stripe.refunds.create({ payment_intent: pi }, { idempotencyKey: step.key }));`,
            },
          ],
        },
      ],
    },
    {
      // Options without the key: reported, with no suggestion (the options are the user's to edit).
      code: `await stripe.checkout.sessions.create({ mode: 'payment' }, { stripeAccount: acct });`,
      errors: [
        {
          messageId: 'missingKey',
          data: { method: 'checkout.sessions.create', effect: 'charges or pays' },
          suggestions: [],
        },
      ],
    },
    {
      code: `await this.stripeClient.invoices.pay(invoiceId);`,
      errors: [
        {
          messageId: 'missingKey',
          suggestions: [
            { messageId: 'addKey', output: `await this.stripeClient.invoices.pay(invoiceId, { idempotencyKey });` },
          ],
        },
      ],
    },
    ...[
      `await stripe.payouts.create({ amount: 100, currency: 'usd' });`,
      `await stripe.transfers.create({ amount: 1, currency: 'usd', destination: 'acct_1' });`,
      `await stripe.subscriptions.create({ customer: 'cus_1', items: [] });`,
    ].map((code) => ({
      code,
      errors: [
        {
          messageId: 'missingKey',
          suggestions: [{ messageId: 'addKey', output: code.replace('});', '}, { idempotencyKey });') }],
        },
      ],
    })),
  ],
});
