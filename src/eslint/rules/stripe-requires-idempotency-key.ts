/**
 * `idem/stripe-requires-idempotency-key`: a Stripe call that creates or moves money without the
 * `idempotencyKey` request option. A retry after a timeout charges (refunds, pays out) twice;
 * with a key, Stripe answers the retry with the first result.
 */
import type { Rule } from 'eslint';
import type * as ESTree from 'estree';
import { hasSpread, memberPath, objectProperty, stepParamOf } from '../ast.js';
import { docsUrl } from '../docs-url.js';
import { isStepCall } from '../entry-points.js';

/**
 * The money-moving methods, by resource path, with the index of their request options argument
 * (after an id and params for the methods that act on an existing object).
 */
const MONEY_CALLS: ReadonlyMap<string, number> = new Map([
  ['paymentIntents.create', 1],
  ['paymentIntents.confirm', 2],
  ['paymentIntents.capture', 2],
  ['paymentIntents.incrementAuthorization', 2],
  ['charges.create', 1],
  ['charges.capture', 2],
  ['refunds.create', 1],
  ['transfers.create', 1],
  ['transfers.createReversal', 2],
  ['payouts.create', 1],
  ['topups.create', 1],
  ['invoices.pay', 2],
  ['subscriptions.create', 1],
  ['subscriptionSchedules.create', 1],
  ['checkout.sessions.create', 1],
  ['creditNotes.create', 1],
  ['applicationFees.createRefund', 2],
  ['customers.createBalanceTransaction', 2],
  ['treasury.outboundPayments.create', 1],
  ['treasury.outboundTransfers.create', 1],
  ['treasury.inboundTransfers.create', 1],
]);

/** The client's name: `stripe`, `this.stripe`, `stripeClient`, `ctx.stripe`. */
const STRIPE_CLIENT = /stripe(?:client|sdk|api)?$/i;

/** The Stripe method a callee names, as `resource.method`, when its receiver is a Stripe client. */
function moneyCallOf(callee: ESTree.Node): string | undefined {
  const path = memberPath(callee);
  if (path === undefined) return undefined;
  for (let start = 1; start < path.length - 1; start++) {
    const method = path.slice(start).join('.');
    if (MONEY_CALLS.has(method) && STRIPE_CLIENT.test(path[start - 1] ?? '')) return method;
  }
  return undefined;
}

/** `step.key` of the workflow step the call is in, to suggest it. */
function stepKeyOf(context: Rule.RuleContext, node: ESTree.Node): string | undefined {
  const name = stepParamOf(context, node, isStepCall);
  return name === undefined ? undefined : `${name}.key`;
}

type Verdict = 'keyed' | 'unknown' | 'no-options' | 'options-without-key';

/** Whether the call passes `idempotencyKey`; `unknown` when an argument could hold it unseen. */
function verdictOf(call: ESTree.CallExpression, optionsIndex: number): Verdict {
  const args = call.arguments as ESTree.Node[];
  if (args.some((arg) => objectProperty(arg, 'idempotencyKey') !== undefined)) return 'keyed';
  if (args.some((arg) => arg.type === 'SpreadElement')) return 'unknown';
  const options = args[optionsIndex];
  if (options === undefined) return 'no-options';
  if (options.type !== 'ObjectExpression' || hasSpread(options)) return 'unknown';
  return 'options-without-key';
}

export const stripeRequiresIdempotencyKey: Rule.RuleModule = {
  meta: {
    type: 'problem',
    hasSuggestions: true,
    docs: {
      description: 'Require the idempotencyKey option on Stripe calls that create or move money.',
      recommended: true,
      url: docsUrl('stripe-requires-idempotency-key'),
    },
    messages: {
      missingKey:
        "stripe.{{method}}() without an idempotencyKey: a retry after a timeout {{effect}} twice. Pass { idempotencyKey } as the request options, a key stable across retries (the request's Idempotency-Key, an order id, `step.key` in a workflow step).",
      addKey: 'Add {{options}} as the request options.',
    },
    schema: [],
  },
  create(context) {
    return {
      CallExpression(call) {
        const method = moneyCallOf(call.callee);
        if (method === undefined) return;
        const verdict = verdictOf(call, MONEY_CALLS.get(method) ?? 1);
        if (verdict === 'keyed' || verdict === 'unknown') return;
        const key = stepKeyOf(context, call) ?? 'idempotencyKey';
        const options = key === 'idempotencyKey' ? '{ idempotencyKey }' : `{ idempotencyKey: ${key} }`;
        const suggest: Rule.SuggestionReportDescriptor[] = [];
        if (verdict === 'no-options') {
          const last = call.arguments.at(-1);
          const closing = context.sourceCode.getLastToken(call);
          suggest.push({
            messageId: 'addKey',
            data: { options },
            fix: (fixer) =>
              last === undefined
                ? fixer.insertTextBefore(closing as never, `{}, ${options}`)
                : fixer.insertTextAfter(last, `, ${options}`),
          });
        }
        context.report({
          node: call,
          messageId: 'missingKey',
          data: { method, effect: method.startsWith('refunds') ? 'refunds' : 'charges or pays' },
          suggest,
        });
      },
    };
  },
};
