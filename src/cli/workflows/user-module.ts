/** The user's module that `idem workflows worker --module` loads: it defines the workflows the worker runs. */
import { existsSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Workflows } from '../../workflow/index.js';
import { CliError, ExitCode, reasonOf, usageError } from '../cli-error.js';

/** What the module exports: defines the workflows on the `Workflows` it is given. */
export type RegisterWorkflows = (workflows: Workflows) => unknown;

const EXAMPLE = "export function register(workflows) { workflows.define('order', async (ctx, input) => { ... }); }";

/**
 * Imports `path` (relative to `cwd`) and finds its `register(workflows)`: a named export
 * `register`, or a default export that is a function (or a CommonJS `module.exports.register`).
 */
export async function loadRegister(path: string, cwd = process.cwd()): Promise<RegisterWorkflows> {
  const file = resolve(cwd, path);
  if (!existsSync(file)) throw usageError(`--module ${path}: there is no file ${file}.`);
  if (!statSync(file).isFile()) throw usageError(`--module ${path}: ${file} is not a file; name the module itself.`);
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    throw notLoaded(path, error);
  }
  const register = registerOf(loaded);
  if (register === undefined) {
    throw usageError(
      `--module ${path} exports no register(workflows) function (nor a default export that is one): export one that defines your workflows, e.g. ${EXAMPLE}`,
    );
  }
  return register;
}

function registerOf(loaded: Record<string, unknown>): RegisterWorkflows | undefined {
  if (typeof loaded.register === 'function') return loaded.register as RegisterWorkflows;
  const fallback = loaded.default;
  if (typeof fallback === 'function') return fallback as RegisterWorkflows;
  const cjs = (fallback as { register?: unknown } | null | undefined)?.register;
  return typeof cjs === 'function' ? (cjs as RegisterWorkflows) : undefined;
}

function notLoaded(path: string, error: unknown): CliError {
  const code = (error as { code?: unknown }).code;
  if (code === 'ERR_UNKNOWN_FILE_EXTENSION' && /^\.[mc]?ts$/.test(extname(path))) {
    return usageError(
      `--module ${path} is TypeScript, which node does not load by itself: compile it to .js (or .mjs), or run the command under tsx: npx tsx node_modules/idem/dist/cli/main.js workflows worker ...`,
    );
  }
  if (code === 'ERR_UNKNOWN_FILE_EXTENSION') {
    return usageError(`--module ${path}: node cannot load a ${extname(path)} file; give a .js or .mjs module.`);
  }
  // Node gives no line for a syntax error in an imported module: node --check does.
  const where = error instanceof SyntaxError ? ` (node --check ${path} shows where)` : '';
  return new CliError(`cannot load --module ${path}: ${reasonOf(error)}${where}.`, ExitCode.failure, { cause: error });
}
