/**
 * `idem/no-blind-insert`: an SQL INSERT with no conflict clause, in code that runs again on a
 * retry (a route handler, a message consumer, a workflow step, or a function of the same file they
 * call). A retried request, a redelivered message or a re-run step inserts the row twice.
 */
import type { Rule, Scope } from 'eslint';
import type * as ESTree from 'estree';
import { firstParamName, memberPath, objectProperty, propertyOf, staticText } from '../ast.js';
import { docsUrl } from '../docs-url.js';
import { FileReachability, type FoundReach, mergeVisitors } from '../reachability.js';
import { isBlindInsert, onConflictOffset } from '../sql.js';

/** pg and mysql2 `query`/`execute`, better-sqlite3 `prepare`/`exec`. */
const SQL_METHODS = new Set(['query', 'execute', 'prepare', 'exec']);
/** Methods of a better-sqlite3 statement that run it. */
const STATEMENT_RUNS = new Set(['run', 'get', 'all', 'iterate']);

/** The SQL argument as found: its text and the literal node that holds it (for the suggestion). */
interface Sql {
  text: string;
  literal: ESTree.Node | undefined;
}

interface Candidate {
  node: ESTree.CallExpression;
  sql: Sql;
  method: string;
  /** For a statement run (`insert.run()`), the `prepare` call that made it. */
  prepared?: ESTree.CallExpression;
}

function findVariable(scope: Scope.Scope | null, name: string): Scope.Variable | undefined {
  for (let current = scope; current !== null; current = current.upper) {
    const found = current.set.get(name);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The initializer of a `const` the identifier names, when the file declares it. */
function constInit(context: Rule.RuleContext, identifier: ESTree.Identifier): ESTree.Node | undefined {
  const variable = findVariable(context.sourceCode.getScope(identifier), identifier.name);
  const definition = variable?.defs[0];
  if (definition?.type !== 'Variable' || definition.parent.kind !== 'const') return undefined;
  return definition.node.init ?? undefined;
}

/** The SQL text of a query's first argument: a literal, a template, `{ text }`, or a const holding one. */
function sqlOf(context: Rule.RuleContext, arg: ESTree.Node | undefined): Sql | undefined {
  let node = arg;
  if (node?.type === 'Identifier') node = constInit(context, node);
  if (node?.type === 'ObjectExpression')
    node = objectProperty(node, 'text')?.value ?? objectProperty(node, 'sql')?.value;
  if (node?.type === 'Identifier') node = constInit(context, node);
  const text = staticText(node);
  if (text === undefined) return undefined;
  const literal = node?.type === 'Literal' || node?.type === 'TemplateLiteral' ? node : undefined;
  return { text, literal };
}

/** Writes through the first parameter of `ctx.transaction`'s function commit with the step record. */
function isAtomicWrite(call: ESTree.CallExpression, reach: FoundReach): boolean {
  if (!reach.atomic || call.callee.type !== 'MemberExpression') return false;
  const receiver = memberPath(call.callee.object)?.[0];
  return receiver !== undefined && receiver === firstParamName(reach.fn);
}

/** `pool.query('INSERT ...')`, `conn.execute(...)`, `db.prepare(...)`, `db.exec(...)` with a blind INSERT. */
function queryCandidate(context: Rule.RuleContext, call: ESTree.CallExpression): Candidate | undefined {
  const method = propertyOf(call.callee);
  if (method === undefined || !SQL_METHODS.has(method)) return undefined;
  const sql = sqlOf(context, call.arguments[0] as ESTree.Node | undefined);
  return sql !== undefined && isBlindInsert(sql.text) ? { node: call, sql, method } : undefined;
}

/** better-sqlite3: `const insert = db.prepare('INSERT ...')` once, `insert.run(...)` in the handler. */
function statementRunCandidate(
  context: Rule.RuleContext,
  call: ESTree.CallExpression,
  prepared: ReadonlySet<string>,
): Candidate | undefined {
  const method = propertyOf(call.callee);
  if (method === undefined || !STATEMENT_RUNS.has(method) || call.callee.type !== 'MemberExpression') return undefined;
  // Only names the file binds to a `prepare(...)` are looked up: `.get(` alone is too common.
  if (call.callee.object.type !== 'Identifier' || !prepared.has(call.callee.object.name)) return undefined;
  const init = constInit(context, call.callee.object);
  if (init?.type !== 'CallExpression' || propertyOf(init.callee) !== 'prepare') return undefined;
  const sql = sqlOf(context, init.arguments[0] as ESTree.Node | undefined);
  return sql !== undefined && isBlindInsert(sql.text)
    ? { node: call, sql, method: 'prepare', prepared: init }
    : undefined;
}

export const noBlindInsert: Rule.RuleModule = {
  meta: {
    type: 'problem',
    hasSuggestions: true,
    docs: {
      description:
        'Disallow an SQL INSERT with no conflict clause in code that runs again on a retry (route handlers, consumers, workflow steps).',
      recommended: true,
      url: docsUrl('no-blind-insert'),
    },
    messages: {
      blindInsert:
        "INSERT without ON CONFLICT / ON DUPLICATE KEY / OR IGNORE in a {{kind}} (line {{line}}): a retry inserts the row again. Make it conflict-safe on a unique key (an idempotency key, a message id, a natural key), or do the write in `ctx.transaction` / an SqlInbox so it commits with Idem's record.",
      appendOnConflict: 'Append ON CONFLICT DO NOTHING (needs a unique constraint the duplicate would hit).',
    },
    schema: [],
  },
  create(context) {
    const reachability = new FileReachability(context);
    const candidates: Candidate[] = [];

    const prepared = new Set<string>();
    const onDeclarator = (declarator: ESTree.VariableDeclarator) => {
      if (declarator.init?.type === 'CallExpression' && propertyOf(declarator.init.callee) === 'prepare') {
        if (declarator.id.type === 'Identifier') prepared.add(declarator.id.name);
      }
    };
    /** Calls like `x.run(...)`, checked at the end, once every `const x = db.prepare(...)` is known. */
    const runs: ESTree.CallExpression[] = [];
    const onCall = (call: ESTree.CallExpression) => {
      const candidate = queryCandidate(context, call);
      if (candidate !== undefined) candidates.push(candidate);
      else if (call.callee.type === 'MemberExpression' && call.callee.object.type === 'Identifier') runs.push(call);
    };

    const report = (candidate: Candidate, reach: FoundReach) => {
      const { sql, method } = candidate;
      const dialectAcceptsOnConflict = method === 'prepare' || method === 'exec' || /\$\d/.test(sql.text);
      const literal = sql.literal;
      const suggest: Rule.SuggestionReportDescriptor[] =
        literal !== undefined && dialectAcceptsOnConflict && literal.range !== undefined
          ? [
              {
                messageId: 'appendOnConflict',
                fix: (fixer) => {
                  const source = context.sourceCode.getText(literal);
                  const offset = onConflictOffset(source);
                  const start = (literal.range as [number, number])[0];
                  return fixer.insertTextAfterRange([start + offset, start + offset], ' ON CONFLICT DO NOTHING');
                },
              },
            ]
          : [];
      context.report({
        node: candidate.node,
        messageId: 'blindInsert',
        data: { kind: reach.kind, line: String(reach.line) },
        suggest,
      });
    };

    return mergeVisitors(reachability.visitors(), {
      VariableDeclarator: onDeclarator,
      CallExpression: onCall,
      'Program:exit': () => {
        for (const call of runs) {
          const candidate = statementRunCandidate(context, call, prepared);
          if (candidate !== undefined) candidates.push(candidate);
        }
        for (const candidate of candidates) {
          // A statement prepared inside reachable code is reported at its `prepare`, once.
          if (candidate.prepared !== undefined && reachability.reachOf(candidate.prepared) !== undefined) continue;
          const reach = reachability.reachOf(candidate.node);
          if (reach !== undefined && !isAtomicWrite(candidate.node, reach)) report(candidate, reach);
        }
      },
    });
  },
};
