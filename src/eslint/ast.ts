/**
 * Small, name-based readers of the ESTree nodes the rules look at. The plugin analyses one file at
 * a time and knows no types: a call is recognised by the names in its callee, an SQL string by
 * its text.
 */
import type { Rule } from 'eslint';
import type * as ESTree from 'estree';

/** A function node: declaration, expression or arrow. */
export type FunctionNode = ESTree.FunctionDeclaration | ESTree.FunctionExpression | ESTree.ArrowFunctionExpression;

/** Whether `node` is a function of any kind. */
export function isFunction(node: ESTree.Node | null | undefined): node is FunctionNode {
  return (
    node?.type === 'FunctionDeclaration' ||
    node?.type === 'FunctionExpression' ||
    node?.type === 'ArrowFunctionExpression'
  );
}

/** The name of an identifier or a non-computed property key (`a`, `'a'`); undefined otherwise. */
export function nameOf(node: ESTree.Node | null | undefined): string | undefined {
  if (node?.type === 'Identifier') return node.name;
  if (node?.type === 'Literal' && typeof node.value === 'string') return node.value;
  if (node?.type === 'PrivateIdentifier') return node.name;
  return undefined;
}

/** The property name of a member expression `a.b` or `a['b']`; undefined for other computed keys. */
export function propertyOf(node: ESTree.Node | null | undefined): string | undefined {
  if (node?.type !== 'MemberExpression') return undefined;
  if (node.computed && node.property.type !== 'Literal') return undefined;
  return nameOf(node.property);
}

/**
 * The last name of a callee: `f` for `f()`, `c` for `a.b.c()`, `f` for `(0, f)()` is not handled
 * (undefined). Optional chains (`a?.b()`) read the same.
 */
export function calleeName(call: ESTree.CallExpression | ESTree.NewExpression): string | undefined {
  const callee = call.callee;
  if (callee.type === 'Identifier') return callee.name;
  return propertyOf(callee);
}

/**
 * The dotted path of a member chain, `['stripe', 'charges', 'create']` for `stripe.charges.create`,
 * `['this', 'stripe', ...]` for `this.stripe...`; undefined when a link is computed or a call.
 */
export function memberPath(node: ESTree.Node): string[] | undefined {
  if (node.type === 'Identifier') return [node.name];
  if (node.type === 'ThisExpression') return ['this'];
  if (node.type === 'MemberExpression') {
    const property = propertyOf(node);
    const object = memberPath(node.object);
    return property === undefined || object === undefined ? undefined : [...object, property];
  }
  if (node.type === 'ChainExpression') return memberPath(node.expression);
  return undefined;
}

/**
 * The static text of a string expression: a literal, a template literal (each `${...}` read as
 * `?`) or a `+` concatenation of those; undefined when any part is not static text.
 */
export function staticText(node: ESTree.Node | null | undefined): string | undefined {
  if (node?.type === 'Literal') return typeof node.value === 'string' ? node.value : undefined;
  if (node?.type === 'TemplateLiteral')
    return node.quasis.map((quasi) => quasi.value.cooked ?? quasi.value.raw).join('?');
  if (node?.type === 'TaggedTemplateExpression') return undefined;
  if (node?.type === 'BinaryExpression' && node.operator === '+') {
    const left = staticText(node.left);
    const right = staticText(node.right);
    if (left === undefined && right === undefined) return undefined;
    return `${left ?? '?'}${right ?? '?'}`;
  }
  return undefined;
}

/** The parent ESLint set on `node`, as a plain ESTree node (null for the Program). */
export function parentOf(node: ESTree.Node): ESTree.Node | null {
  return ((node as Rule.Node).parent as ESTree.Node | null | undefined) ?? null;
}

/** The parameter name of the step function (`ctx.step(name, (step) => ...)`) that `node` is written in; undefined outside one or without a plain parameter. */
export function stepParamOf(
  context: Rule.RuleContext,
  node: ESTree.Node,
  isStepCall: (call: ESTree.CallExpression) => boolean,
): string | undefined {
  for (const fn of enclosingFunctions(context, node)) {
    const parent = parentOf(fn);
    if (parent?.type === 'CallExpression' && parent.arguments[1] === fn && isStepCall(parent))
      return firstParamName(fn);
  }
  return undefined;
}

/** The functions that enclose `node`, innermost first. */
export function enclosingFunctions(context: Rule.RuleContext, node: ESTree.Node): FunctionNode[] {
  const found: FunctionNode[] = [];
  const ancestors = context.sourceCode.getAncestors(node);
  for (let index = ancestors.length - 1; index >= 0; index--) {
    const ancestor = ancestors[index];
    if (isFunction(ancestor)) found.push(ancestor);
  }
  return found;
}

/** The property `name` of an object literal, when written plainly (not spread, not computed). */
export function objectProperty(object: ESTree.Node | undefined, name: string): ESTree.Property | undefined {
  if (object?.type !== 'ObjectExpression') return undefined;
  for (const property of object.properties) {
    if (property.type === 'Property' && !property.computed && nameOf(property.key) === name) return property;
  }
  return undefined;
}

/** Whether an object literal has a spread (`{ ...options }`): its properties are then not all known. */
export function hasSpread(object: ESTree.ObjectExpression): boolean {
  return object.properties.some((property) => property.type === 'SpreadElement');
}

/** The first parameter of a function when it is a plain identifier (`(step) => ...`). */
export function firstParamName(fn: FunctionNode): string | undefined {
  const param = fn.params[0];
  return param?.type === 'Identifier' ? param.name : undefined;
}
