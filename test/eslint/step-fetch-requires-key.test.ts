import { rules } from '../../src/eslint/index.js';
import { ruleTester } from './rule-tester.js';

const inStep = (call: string) => `workflows.define('w', async (ctx) => {
  await ctx.step('call', async (step) => ${call});
});`;

ruleTester.run('step-fetch-requires-key', rules['step-fetch-requires-key'], {
  valid: [
    inStep(`fetch(url, { method: 'POST', headers: { 'Idempotency-Key': step.key } })`),
    inStep(`fetch(url, { method: 'POST', headers: new Headers({ 'idempotency-key': step.key }) })`),
    inStep(`axios.post(url, body, { headers: { 'Idempotency-Key': step.key } })`),
    inStep(`axios({ method: 'put', url, headers: { 'Idempotency-Key': step.key } })`),
    // GET is safe to repeat.
    inStep(`fetch(url)`),
    inStep(`axios.get(url)`),
    // Headers built elsewhere may carry it.
    inStep(`fetch(url, { method: 'POST', headers })`),
    inStep(`fetch(url, init)`),
    // Not in a step: a route handler's fetch is another concern.
    `app.post('/x', async () => { await fetch(url, { method: 'POST' }); });`,
  ],
  invalid: [
    {
      code: inStep(`fetch('https://api.example.com/orders', { method: 'POST', body })`),
      errors: [
        {
          messageId: 'missingKey',
          data: { method: 'POST', line: '2' },
          suggestions: [
            {
              messageId: 'addKey',
              output: inStep(
                `fetch('https://api.example.com/orders', { headers: { 'Idempotency-Key': step.key }, method: 'POST', body })`,
              ),
            },
          ],
        },
      ],
    },
    {
      code: inStep(`fetch(url, { method: 'PATCH', headers: { 'Content-Type': 'application/json' } })`),
      errors: [
        {
          messageId: 'missingKey',
          suggestions: [
            {
              messageId: 'addKey',
              output: inStep(
                `fetch(url, { method: 'PATCH', headers: { 'Idempotency-Key': step.key, 'Content-Type': 'application/json' } })`,
              ),
            },
          ],
        },
      ],
    },
    {
      code: inStep(`axios.post(url, { amount: 1 })`),
      errors: [
        {
          messageId: 'missingKey',
          data: { method: 'POST', line: '2' },
          suggestions: [
            {
              messageId: 'addKey',
              output: inStep(`axios.post(url, { amount: 1 }, { headers: { 'Idempotency-Key': step.key } })`),
            },
          ],
        },
      ],
    },
    {
      // An axios instance of the file, a DELETE; a step with no parameter gets no suggestion.
      code: `const api = axios.create({ baseURL });
workflows.define('w', async (ctx) => { await ctx.step('cancel', () => api.delete('/orders/1')); });`,
      errors: [{ messageId: 'missingKey', data: { method: 'DELETE', line: '2' }, suggestions: [] }],
    },
    {
      // A helper of the same file called from a step.
      code: `async function notify(body) { await fetch(hook, { method: 'POST', body }); }
workflows.define('w', async (ctx) => { await ctx.step('notify', () => notify('x')); });`,
      errors: [{ messageId: 'missingKey', data: { method: 'POST', line: '2' } }],
    },
  ],
});
