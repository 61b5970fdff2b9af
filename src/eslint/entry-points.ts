/**
 * Where code runs again on a retry: the functions a file hands to a web framework's routes, to a
 * message consumer, or to a workflow step. Recognised by name only (the plugin reads one file and
 * knows no types), so the lists stay short and specific.
 */
import type * as ESTree from 'estree';
import { calleeName, nameOf, objectProperty, staticText } from './ast.js';

/** Why a function is an entry point: named in rule messages. */
export type EntryKind =
  | 'request handler'
  | 'message consumer'
  | 'workflow step'
  | 'backfill handler'
  | 'Lambda handler';

/** A function (or the name of one declared in the file) that a call makes an entry point. */
export interface Entry {
  /** The function node, or an identifier naming a function declared elsewhere in the file. */
  target: ESTree.Node;
  kind: EntryKind;
  /**
   * The function's first parameter is a transaction whose writes commit with Idem's record
   * (`ctx.transaction(name, db, (tx) => ...)`, `sqlInbox.consume({ id }, (tx) => ...)`).
   */
  atomic?: boolean;
}

const HTTP_VERBS = new Set(['get', 'post', 'put', 'patch', 'delete', 'del', 'all', 'options', 'head']);
/** Idem's consumer helpers and others that take `{ handler }`: the handler is the consumer. */
const HANDLER_OPTION_CALLS = new Set([
  'consumeAmqp',
  'amqpHandler',
  'consumeJetStream',
  'jetStreamHandler',
  'consumeOnce',
]);
/** Calls whose function arguments are consumers: amqplib, Bull, pg-boss and Idem's job guards. */
const CONSUMER_CALLS = new Set(['consume', 'process', 'work', 'guardBullProcessor', 'guardPgBossHandler']);
/** Option names that hold a consumer: kafkajs `run({ eachMessage })`, NATS `subscribe(s, { callback })`, sqs-consumer. */
const CONSUMER_OPTIONS = ['eachMessage', 'eachBatch', 'callback', 'handleMessage', 'handleMessageBatch'];
const HTTP_DECORATORS = new Set(['Get', 'Post', 'Put', 'Patch', 'Delete', 'All']);
const CONSUMER_DECORATORS = new Set(['EventPattern', 'MessagePattern', 'Process', 'Processor']);

function isPath(node: ESTree.Node | undefined): boolean {
  const text = staticText(node);
  return text !== undefined && (text.startsWith('/') || text === '*');
}

/** A function argument, or a function given to a wrapper call (`asyncHandler(async (req) => ...)`). */
function handlerArguments(args: readonly ESTree.Node[]): ESTree.Node[] {
  return args.flatMap((arg): ESTree.Node[] => {
    if (arg.type === 'CallExpression') return (arg.arguments as ESTree.Node[]).filter(isHandlerLike);
    return isHandlerLike(arg) ? [arg] : [];
  });
}

function isHandlerLike(node: ESTree.Node): boolean {
  return node.type === 'FunctionExpression' || node.type === 'ArrowFunctionExpression' || node.type === 'Identifier';
}

function optionEntries(object: ESTree.Node | undefined, names: readonly string[], kind: EntryKind): Entry[] {
  return names.flatMap((name) => {
    const value = objectProperty(object, name)?.value;
    return value !== undefined && isHandlerLike(value) ? [{ target: value, kind }] : [];
  });
}

function httpEntries(call: ESTree.CallExpression, name: string): Entry[] {
  if (call.callee.type !== 'MemberExpression') return [];
  if (HTTP_VERBS.has(name)) {
    const chained = call.callee.object.type === 'CallExpression' && calleeName(call.callee.object) === 'route';
    if (!chained && !isPath(call.arguments[0])) return [];
    const args = chained ? call.arguments : call.arguments.slice(1);
    return handlerArguments(args as ESTree.Node[]).map((target) => ({ target, kind: 'request handler' }));
  }
  if (name === 'route') return optionEntries(call.arguments[0], ['handler'], 'request handler');
  return [];
}

function consumerEntries(call: ESTree.CallExpression, name: string): Entry[] {
  const args = call.arguments as ESTree.Node[];
  if (HANDLER_OPTION_CALLS.has(name)) {
    return args.flatMap((arg) => optionEntries(arg, ['handler'], 'message consumer'));
  }
  // Idem's `backfill({ handler })`: an item's handler runs again after a crash mid-item.
  if (name === 'backfill') return args.flatMap((arg) => optionEntries(arg, ['handler'], 'backfill handler'));
  if (CONSUMER_CALLS.has(name)) {
    // Idem's inbox: `inbox.consume({ id }, handler)`; the SQL inbox hands the handler its transaction.
    const atomic = name === 'consume' && args[0]?.type === 'ObjectExpression';
    return handlerArguments(args).map((target) => ({ target, kind: 'message consumer', atomic }));
  }
  if (name === 'run' || name === 'subscribe' || name === 'create') {
    return args.flatMap((arg) => optionEntries(arg, CONSUMER_OPTIONS, 'message consumer'));
  }
  return [];
}

function stepEntries(call: ESTree.CallExpression, name: string): Entry[] {
  const args = call.arguments as ESTree.Node[];
  if (staticText(args[0]) === undefined && args[0]?.type !== 'Identifier') return [];
  // Idem `ctx.step(name, fn)`, Inngest `step.run(name, fn)`, Restate `ctx.run(name, fn)`.
  if ((name === 'step' || name === 'run') && args[1] !== undefined && isHandlerLike(args[1])) {
    return [{ target: args[1], kind: 'workflow step' }];
  }
  // Idem `ctx.transaction(name, db, (tx) => ...)`: writes through `tx` commit with the step's record.
  if (name === 'transaction' && args[2] !== undefined && isHandlerLike(args[2])) {
    return [{ target: args[2], kind: 'workflow step', atomic: true }];
  }
  return [];
}

/** The entry points a call creates: its route handlers, consumers or step functions. */
export function entriesOfCall(call: ESTree.CallExpression): Entry[] {
  const name = calleeName(call);
  if (name === undefined) return [];
  return [...httpEntries(call, name), ...consumerEntries(call, name), ...stepEntries(call, name)];
}

/** BullMQ's `new Worker(queue, processor)`: the processor is a consumer. */
export function entriesOfNew(expression: ESTree.NewExpression): Entry[] {
  if (calleeName(expression) !== 'Worker') return [];
  const processor = expression.arguments[1];
  return processor !== undefined && isHandlerLike(processor) ? [{ target: processor, kind: 'message consumer' }] : [];
}

/** NestJS: a controller method decorated `@Post()`, a microservice `@EventPattern()`, a Bull `@Process()`. */
export function entryKindOfDecorators(
  decorators: readonly { expression: ESTree.Node }[] | undefined,
): EntryKind | undefined {
  for (const decorator of decorators ?? []) {
    const expression = decorator.expression;
    const name = expression.type === 'CallExpression' ? calleeName(expression) : nameOf(expression);
    if (name !== undefined && HTTP_DECORATORS.has(name)) return 'request handler';
    if (name !== undefined && CONSUMER_DECORATORS.has(name)) return 'message consumer';
  }
  return undefined;
}

/** The body of a workflow: Idem's `workflows.define(name, fn)` and `agentWorkflow(workflows, name, fn)`. */
export function workflowBodyOf(call: ESTree.CallExpression): ESTree.Node | undefined {
  const name = calleeName(call);
  const args = call.arguments as ESTree.Node[];
  if (name === 'define' && call.callee.type === 'MemberExpression' && staticText(args[0]) !== undefined) {
    return args[1] !== undefined && isHandlerLike(args[1]) ? args[1] : undefined;
  }
  if (name === 'agentWorkflow') return args[2] !== undefined && isHandlerLike(args[2]) ? args[2] : undefined;
  return undefined;
}

/** Whether a call runs its function arguments as a step (their code may have effects). */
export function isStepCall(call: ESTree.CallExpression): boolean {
  const name = calleeName(call);
  return (name === 'step' || name === 'transaction' || name === 'run') && call.callee.type === 'MemberExpression';
}
