import { rules } from '../../src/eslint/index.js';
import { ruleTester } from './rule-tester.js';

const body = (code: string) => `const order = workflows.define('order', async (ctx, input) => {
  ${code}
});`;

ruleTester.run('workflow-determinism', rules['workflow-determinism'], {
  valid: [
    body(`const now = await ctx.step('now', () => Date.now());`),
    body(`const id = await ctx.step('id', () => crypto.randomUUID());`),
    body(`await ctx.step('charge', async (step) => { await fetch(url, { method: 'POST' }); return Math.random(); });`),
    body(`await ctx.transaction('save', db, (tx) => tx.query('UPDATE t SET a = 1'));`),
    body(`await ctx.step('x', () => 1, { compensate: () => pool.query('DELETE FROM t') });`),
    body(`const at = new Date(input.at); await ctx.sleepUntil(at);`),
    body(`const key = ctx.key('charge');`),
    // Outside any workflow body.
    `const now = Date.now(); await pool.query('SELECT 1');`,
    `app.post('/x', async () => { Math.random(); });`,
  ],
  invalid: [
    {
      code: body(`const now = Date.now();`),
      errors: [{ messageId: 'outsideStep', data: { what: 'Date.now()', name: 'now' } }],
    },
    {
      code: body(`const at = new Date(); const r = Math.random(); const id = crypto.randomUUID();`),
      errors: [
        { messageId: 'outsideStep', data: { what: 'new Date()', name: 'now' } },
        { messageId: 'outsideStep', data: { what: 'Math.random()', name: 'random' } },
        { messageId: 'outsideStep', data: { what: 'crypto.randomUUID()', name: 'random' } },
      ],
    },
    {
      code: body(
        `const res = await fetch(url); const { rows } = await pool.query('SELECT * FROM orders'); await axios.post(u, {});`,
      ),
      errors: [
        { messageId: 'outsideStep', data: { what: 'fetch()', name: 'load' } },
        { messageId: 'outsideStep', data: { what: '.query() (a database call)', name: 'load' } },
        { messageId: 'outsideStep', data: { what: 'axios.post()', name: 'load' } },
      ],
    },
    {
      // A callback in the body, not a step, still runs on every resume.
      code: body(`const ids = input.items.map(() => Math.random()); await ctx.step('save', () => ids);`),
      errors: [{ messageId: 'outsideStep' }],
    },
    {
      code: `agentWorkflow(workflows, 'support', async (agent, input) => { const t = Date.now(); return t; });`,
      errors: [{ messageId: 'outsideStep' }],
    },
  ],
});
