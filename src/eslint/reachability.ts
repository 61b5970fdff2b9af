/**
 * Which functions of a file run on a retry: the entry points (route handlers, consumers, workflow
 * steps) and every function of the same file they call, by name, transitively. A function nested
 * in a reachable one (a callback) is reachable too. One file only: a call into another module is
 * not followed.
 */
import type { Rule } from 'eslint';
import type * as ESTree from 'estree';
import { enclosingFunctions, type FunctionNode, isFunction, nameOf, parentOf, propertyOf } from './ast.js';
import { type Entry, type EntryKind, entriesOfCall, entriesOfNew, entryKindOfDecorators } from './entry-points.js';

/** How a function is reached: the kind of its entry point and the line where that entry is. */
export interface Reach {
  kind: EntryKind;
  line: number;
  /** The entry hands its function a transaction that commits with Idem's record. */
  atomic: boolean;
}

/** A reach and the enclosing function it was found on. */
export interface FoundReach extends Reach {
  fn: FunctionNode;
}

/** The names a function can be called by: its declaration, its variable, its method or property key. */
function namesOf(fn: FunctionNode): string[] {
  if (fn.type === 'FunctionDeclaration') return fn.id === null ? [] : [fn.id.name];
  const parent = parentOf(fn);
  let name: string | undefined;
  if (parent?.type === 'VariableDeclarator' && parent.init === fn) name = nameOf(parent.id);
  else if (parent?.type === 'Property' && parent.value === fn) name = nameOf(parent.key);
  else if (parent?.type === 'MethodDefinition' || parent?.type === 'PropertyDefinition') name = nameOf(parent.key);
  else if (parent?.type === 'CallExpression') {
    // `const chargeOnce = idempotent(async (...) => ...)`: the wrapper's variable names the function.
    const holder = parentOf(parent);
    if (holder?.type === 'VariableDeclarator' && holder.init === parent) name = nameOf(holder.id);
  }
  return name === undefined ? [] : [name];
}

/** A Lambda handler: `export const handler = async (event) => ...` or `export async function handler`. */
function isLambdaHandler(fn: FunctionNode): boolean {
  const parent = parentOf(fn);
  if (fn.type === 'FunctionDeclaration') return fn.id?.name === 'handler' && parent?.type === 'ExportNamedDeclaration';
  if (parent?.type !== 'VariableDeclarator' || nameOf(parent.id) !== 'handler') return false;
  const declaration = parentOf(parent);
  return declaration !== null && parentOf(declaration)?.type === 'ExportNamedDeclaration';
}

/** Collects a file's functions, calls and entry points as a rule visits it; answers after the visit. */
export class FileReachability {
  readonly #context: Rule.RuleContext;
  readonly #byName = new Map<string, FunctionNode[]>();
  readonly #calls = new Map<FunctionNode, Set<string>>();
  readonly #entries: Entry[] = [];
  /** The functions the visit is inside, innermost last: the caller of a call is the top one. */
  readonly #stack: FunctionNode[] = [];
  #reach: Map<FunctionNode, Reach> | undefined;

  constructor(context: Rule.RuleContext) {
    this.#context = context;
  }

  /** The visitors that feed the graph; merge them into the rule's own. */
  visitors(): Rule.RuleListener {
    const onFunction = (node: FunctionNode) => this.#onFunction(node);
    const onExit = () => void this.#stack.pop();
    return {
      FunctionDeclaration: onFunction,
      FunctionExpression: onFunction,
      ArrowFunctionExpression: onFunction,
      'FunctionDeclaration:exit': onExit,
      'FunctionExpression:exit': onExit,
      'ArrowFunctionExpression:exit': onExit,
      CallExpression: (node) => this.#onCall(node),
      NewExpression: (node) => this.#entries.push(...entriesOfNew(node)),
    };
  }

  /** How the function around `node` is reached from an entry point, innermost reachable first; undefined if not. */
  reachOf(node: ESTree.Node): FoundReach | undefined {
    const reach = this.#compute();
    for (const fn of enclosingFunctions(this.#context, node)) {
      const found = reach.get(fn);
      if (found !== undefined) return { ...found, fn };
    }
    return undefined;
  }

  #onFunction(fn: FunctionNode): void {
    this.#stack.push(fn);
    for (const name of namesOf(fn)) this.#byName.set(name, [...(this.#byName.get(name) ?? []), fn]);
    const parent = parentOf(fn);
    const decorators = (parent as { decorators?: { expression: ESTree.Node }[] } | null)?.decorators;
    const kind = parent?.type === 'MethodDefinition' ? entryKindOfDecorators(decorators) : undefined;
    if (kind !== undefined) this.#entries.push({ target: fn, kind });
    if (isLambdaHandler(fn)) this.#entries.push({ target: fn, kind: 'Lambda handler' });
  }

  #onCall(call: ESTree.CallExpression): void {
    this.#entries.push(...entriesOfCall(call));
    const caller = this.#stack.at(-1);
    if (caller === undefined) return;
    const callee = call.callee.type === 'Identifier' ? call.callee.name : propertyOf(call.callee);
    if (callee === undefined) return;
    const calls = this.#calls.get(caller) ?? new Set<string>();
    this.#calls.set(caller, calls.add(callee));
  }

  #named(name: string | undefined): FunctionNode[] {
    return name === undefined ? [] : (this.#byName.get(name) ?? []);
  }

  #compute(): Map<FunctionNode, Reach> {
    if (this.#reach !== undefined) return this.#reach;
    const reach = new Map<FunctionNode, Reach>();
    const queue: FunctionNode[] = [];
    const mark = (fn: FunctionNode, how: Reach) => {
      if (reach.has(fn)) return;
      reach.set(fn, how);
      queue.push(fn);
    };
    for (const entry of this.#entries) {
      const how = { kind: entry.kind, line: entry.target.loc?.start.line ?? 0, atomic: entry.atomic === true };
      const targets = isFunction(entry.target) ? [entry.target] : this.#named(nameOf(entry.target));
      for (const fn of targets) mark(fn, how);
    }
    while (queue.length > 0) {
      const fn = queue.shift() as FunctionNode;
      const called = { ...(reach.get(fn) as Reach), atomic: false };
      const names = [...(this.#calls.get(fn) ?? [])];
      for (const target of names.flatMap((name) => this.#named(name))) mark(target, called);
    }
    this.#reach = reach;
    return reach;
  }
}

/** Merges listeners that may handle the same node type: each runs in turn. */
export function mergeVisitors(...listeners: Rule.RuleListener[]): Rule.RuleListener {
  const merged: Record<string, (node: never) => void> = {};
  for (const listener of listeners) {
    for (const [selector, handler] of Object.entries(listener)) {
      if (handler === undefined) continue;
      const previous = merged[selector];
      const next = handler as (node: never) => void;
      merged[selector] =
        previous === undefined
          ? next
          : (node: never) => {
              previous(node);
              next(node);
            };
    }
  }
  return merged as Rule.RuleListener;
}
