/**
 * `idem/workflow-determinism`: clock, randomness, network and database calls written directly in
 * a workflow body. The body re-runs on every resume; only steps are recorded. A value read there
 * differs on the next run, and an effect there happens again.
 */
import type { Rule } from 'eslint';
import type * as ESTree from 'estree';
import { calleeName, memberPath, propertyOf } from '../ast.js';
import { docsUrl } from '../docs-url.js';
import { isStepCall, workflowBodyOf } from '../entry-points.js';

/** What a call in the body is, for the message; undefined when it is harmless. */
function nondeterminismOf(node: ESTree.CallExpression | ESTree.NewExpression): string | undefined {
  if (node.type === 'NewExpression') {
    return calleeName(node) === 'Date' && node.arguments.length === 0 ? 'new Date()' : undefined;
  }
  const path = memberPath(node.callee)?.join('.');
  switch (path) {
    case 'Date.now':
    case 'Math.random':
    case 'performance.now':
    case 'crypto.randomUUID':
    case 'crypto.getRandomValues':
    case 'randomUUID':
    case 'fetch':
    case 'globalThis.fetch':
    case 'axios':
      return `${path}()`;
  }
  if (path?.startsWith('axios.')) return `${path}()`;
  const method = propertyOf(node.callee);
  if (method === 'query' || method === 'execute') return `.${method}() (a database call)`;
  return undefined;
}

/** Whether the body reaches `node` without going through a step call's arguments. */
function isInBodyOutsideSteps(ancestors: readonly ESTree.Node[], bodies: ReadonlySet<ESTree.Node>): boolean {
  for (let index = ancestors.length - 1; index >= 0; index--) {
    const ancestor = ancestors[index] as ESTree.Node;
    if (bodies.has(ancestor)) return true;
    const child = ancestors[index + 1];
    if (ancestor.type === 'CallExpression' && isStepCall(ancestor) && child !== ancestor.callee) return false;
  }
  return false;
}

export const workflowDeterminism: Rule.RuleModule = {
  meta: {
    type: 'problem',
    docs: {
      description: 'Disallow clock, randomness, network and database calls directly in a workflow body, outside steps.',
      recommended: true,
      url: docsUrl('workflow-determinism'),
    },
    messages: {
      outsideStep:
        "{{what}} directly in a workflow body: the body re-runs on every resume, so it gives another value (or acts again) each time. Move it into a step, which records its result: `await ctx.step('{{name}}', () => ...)`; to wait, use ctx.sleep / ctx.sleepUntil.",
    },
    schema: [],
  },
  create(context) {
    const bodies = new Set<ESTree.Node>();
    const check = (node: ESTree.CallExpression | ESTree.NewExpression) => {
      if (bodies.size === 0) return;
      const what = nondeterminismOf(node);
      if (what === undefined) return;
      if (!isInBodyOutsideSteps(context.sourceCode.getAncestors(node), bodies)) return;
      const name = /Date|performance/.test(what) ? 'now' : /random|Random/.test(what) ? 'random' : 'load';
      context.report({ node, messageId: 'outsideStep', data: { what, name } });
    };
    return {
      CallExpression(node) {
        // A body is entered after its `define(...)` call is visited, so it is known before its contents.
        const body = workflowBodyOf(node);
        if (body !== undefined) bodies.add(body);
        check(node);
      },
      NewExpression: check,
    };
  },
};
