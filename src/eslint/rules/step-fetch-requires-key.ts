/**
 * `idem/step-fetch-requires-key`: a `fetch` or axios POST, PUT, PATCH or DELETE in a workflow step
 * that sends no `Idempotency-Key` header. A step is at-least-once: a crash after the call and
 * before the step's record runs it again, and only the step's stable key lets the server tell.
 */
import type { Rule } from 'eslint';
import type * as ESTree from 'estree';
import { calleeName, hasSpread, memberPath, nameOf, objectProperty, staticText, stepParamOf } from '../ast.js';
import { docsUrl } from '../docs-url.js';
import { isStepCall } from '../entry-points.js';
import { FileReachability, mergeVisitors } from '../reachability.js';

const UNSAFE = new Set(['post', 'put', 'patch', 'delete']);
/** axios shortcuts and the index of their config argument. */
const AXIOS_CONFIG_INDEX: Readonly<Record<string, number>> = { post: 2, put: 2, patch: 2, delete: 1 };

/** A request found: where its config is (or would go), and the header object when there is one. */
interface Request {
  call: ESTree.CallExpression;
  method: string;
  /** The config/init argument's index. */
  configIndex: number;
}

/** The HTTP method of a config object, lower-cased; undefined when not a literal. */
function methodOf(config: ESTree.Node | undefined): string | undefined {
  return staticText(objectProperty(config, 'method')?.value)?.toLowerCase();
}

/** The names of the file's axios instances: `const api = axios.create(...)`. */
type AxiosNames = ReadonlySet<string>;

/** Whether `node` names axios or one of the file's axios instances. */
function isAxios(names: AxiosNames, node: ESTree.Node): boolean {
  return node.type === 'Identifier' && (node.name === 'axios' || names.has(node.name));
}

/** A request whose method is in its config object (`fetch(url, init)`, `axios(config)`), if unsafe. */
function configured(call: ESTree.CallExpression, configIndex: number): Request | undefined {
  const method = methodOf(call.arguments[configIndex] as ESTree.Node | undefined);
  return method !== undefined && UNSAFE.has(method) ? { call, method, configIndex } : undefined;
}

function requestOf(names: AxiosNames, call: ESTree.CallExpression): Request | undefined {
  const path = memberPath(call.callee);
  if (path?.at(-1) === 'fetch' && (path.length === 1 || path[0] === 'globalThis')) return configured(call, 1);
  if (call.callee.type === 'Identifier') return isAxios(names, call.callee) ? configured(call, 0) : undefined;
  if (call.callee.type !== 'MemberExpression' || !isAxios(names, call.callee.object)) return undefined;
  const name = calleeName(call) ?? '';
  if (name === 'request') return configured(call, 0);
  const index = AXIOS_CONFIG_INDEX[name];
  return index === undefined ? undefined : { call, method: name, configIndex: index };
}

type Verdict = 'keyed' | 'unknown' | { insertAfter: ESTree.Node | undefined; text: (key: string) => string };

function hasKeyHeader(headers: ESTree.ObjectExpression): boolean {
  return headers.properties.some(
    (property) => property.type === 'Property' && nameOf(property.key)?.toLowerCase() === 'idempotency-key',
  );
}

/** Whether the request carries `Idempotency-Key`, and if not, where a suggestion would add it. */
function verdictOf(context: Rule.RuleContext, request: Request): Verdict {
  const args = request.call.arguments as ESTree.Node[];
  if (args.some((arg) => arg.type === 'SpreadElement')) return 'unknown';
  const config = args[request.configIndex];
  if (config === undefined) {
    const padding = ', undefined'.repeat(Math.max(0, request.configIndex - args.length));
    return { insertAfter: args.at(-1), text: (key) => `${padding}, { headers: { 'Idempotency-Key': ${key} } }` };
  }
  if (config.type !== 'ObjectExpression') return 'unknown';
  let headers: ESTree.Node | undefined = objectProperty(config, 'headers')?.value;
  if (headers?.type === 'NewExpression' && calleeName(headers) === 'Headers') headers = headers.arguments[0];
  if (headers === undefined) {
    if (hasSpread(config)) return 'unknown';
    return {
      insertAfter: context.sourceCode.getFirstToken(config) as never,
      text: (key) => ` headers: { 'Idempotency-Key': ${key} },`,
    };
  }
  if (headers.type !== 'ObjectExpression') return 'unknown';
  if (hasKeyHeader(headers)) return 'keyed';
  if (hasSpread(headers)) return 'unknown';
  return {
    insertAfter: context.sourceCode.getFirstToken(headers) as never,
    text: (key) => ` 'Idempotency-Key': ${key},`,
  };
}

export const stepFetchRequiresKey: Rule.RuleModule = {
  meta: {
    type: 'problem',
    hasSuggestions: true,
    docs: {
      description: 'Require an Idempotency-Key header on POST, PUT, PATCH and DELETE requests made in a workflow step.',
      recommended: true,
      url: docsUrl('step-fetch-requires-key'),
    },
    messages: {
      missingKey:
        "{{method}} request in a workflow step (line {{line}}) without an Idempotency-Key header: a step runs again after a crash, and the server cannot tell the repeat. Pass the step's stable key: headers: { 'Idempotency-Key': step.key }.",
      addKey: "Send 'Idempotency-Key': {{key}}.",
    },
    schema: [],
  },
  create(context) {
    const reachability = new FileReachability(context);
    const requests: Request[] = [];
    const axiosNames = new Set<string>();
    return mergeVisitors(reachability.visitors(), {
      VariableDeclarator(declarator) {
        const init = declarator.init;
        if (init?.type === 'CallExpression' && memberPath(init.callee)?.join('.') === 'axios.create') {
          const name = nameOf(declarator.id);
          if (name !== undefined) axiosNames.add(name);
        }
      },
      CallExpression(call) {
        const request = requestOf(axiosNames, call);
        if (request !== undefined) requests.push(request);
      },
      'Program:exit'() {
        for (const request of requests) {
          const reach = reachability.reachOf(request.call);
          if (reach?.kind !== 'workflow step') continue;
          const verdict = verdictOf(context, request);
          if (verdict === 'keyed' || verdict === 'unknown') continue;
          const param = stepParamOf(context, request.call, isStepCall);
          const suggest = suggestionsOf(verdict, param === undefined ? undefined : `${param}.key`);
          context.report({
            node: request.call,
            messageId: 'missingKey',
            data: { method: request.method.toUpperCase(), line: String(reach.line) },
            suggest,
          });
        }
      },
    });
  },
};

/** The header to add, when the step names its parameter and there is a place to put it. */
function suggestionsOf(
  verdict: Exclude<Verdict, 'keyed' | 'unknown'>,
  key: string | undefined,
): Rule.SuggestionReportDescriptor[] {
  const anchor = verdict.insertAfter;
  return key === undefined || anchor === undefined
    ? []
    : [
        {
          messageId: 'addKey',
          data: { key },
          fix: (fixer) => fixer.insertTextAfter(anchor as never, verdict.text(key)),
        },
      ];
}
