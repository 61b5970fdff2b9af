/** The user's module that `idem backfill` runs: it exports the items, their key and the handler. */
import { existsSync, statSync } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BackfillHandler } from '../../backfill/index.js';
import { CliError, ExitCode, reasonOf, usageError } from '../cli-error.js';

/** What a job module exports, checked. */
export interface BackfillJob {
  /** The name the job's records are kept under: `--name`, else the module's `name`, else its file name. */
  name: string;
  /** Gives the items: the module's `items`, called first when it is a function. */
  items: () => Promise<Iterable<unknown> | AsyncIterable<unknown>>;
  key: (item: unknown) => string;
  handler: BackfillHandler<unknown>;
  /** The module's `total`, when it says how many items there are. */
  total: number | undefined;
}

const EXAMPLE =
  'export const items = [...]; export function key(item) { return item.id; } export async function handler(item, ctx) { ... }';

/**
 * Imports `path` (relative to `cwd`) and finds its exports: `items` (an array, an iterable, an
 * async iterable, or a function that returns one), `key(item)`, `handler(item, ctx)`, and
 * optionally `name` and `total`; as named exports or as the properties of a default export.
 */
export async function loadJob(path: string, cwd = process.cwd()): Promise<BackfillJob> {
  const file = resolve(cwd, path);
  if (!existsSync(file)) throw usageError(`backfill ${path}: there is no file ${file}.`);
  if (!statSync(file).isFile()) throw usageError(`backfill ${path}: ${file} is not a file; name the job module.`);
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    throw notLoaded(path, error);
  }
  const exports = exportsOf(loaded);
  const missing = ['items', 'key', 'handler'].filter((name) => exports[name] === undefined);
  if (missing.length > 0) {
    throw usageError(`backfill ${path} does not export ${missing.join(', ')}: a job module exports, e.g., ${EXAMPLE}`);
  }
  for (const name of ['key', 'handler']) {
    if (typeof exports[name] !== 'function') {
      throw usageError(`backfill ${path}: its export ${name} is a ${typeof exports[name]}; it must be a function.`);
    }
  }
  return {
    name: nameOf(exports.name, file, path),
    items: () => itemsOf(exports.items, path),
    key: exports.key as (item: unknown) => string,
    handler: exports.handler as BackfillHandler<unknown>,
    total: totalOf(exports.total, path),
  };
}

/** Named exports, or a default export's properties when the module has no named `handler`. */
function exportsOf(loaded: Record<string, unknown>): Record<string, unknown> {
  if (loaded.handler !== undefined) return loaded;
  const fallback = loaded.default;
  return typeof fallback === 'object' && fallback !== null ? (fallback as Record<string, unknown>) : loaded;
}

function nameOf(given: unknown, file: string, path: string): string {
  if (given === undefined) return basename(file, extname(file));
  if (typeof given === 'string' && given !== '') return given;
  throw usageError(`backfill ${path}: its export name must be a non-empty string, got ${typeof given}.`);
}

function totalOf(given: unknown, path: string): number | undefined {
  if (given === undefined || (typeof given === 'number' && Number.isSafeInteger(given) && given >= 0)) {
    return given as number | undefined;
  }
  throw usageError(`backfill ${path}: its export total must be a whole number of items, got ${String(given)}.`);
}

async function itemsOf(items: unknown, path: string): Promise<Iterable<unknown> | AsyncIterable<unknown>> {
  let value = items;
  if (typeof value === 'function') {
    try {
      value = await (value as () => unknown)();
    } catch (error) {
      throw new CliError(`backfill ${path}: items() failed: ${reasonOf(error)}.`, ExitCode.failure, { cause: error });
    }
  }
  const candidate = value as { [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown } | null | undefined;
  if (typeof candidate?.[Symbol.iterator] === 'function' || typeof candidate?.[Symbol.asyncIterator] === 'function') {
    return value as Iterable<unknown> | AsyncIterable<unknown>;
  }
  throw usageError(
    `backfill ${path}: items must be an array, an iterable, an async iterable (a generator, a cursor) or a function that returns one; got ${value === null ? 'null' : typeof value}.`,
  );
}

function notLoaded(path: string, error: unknown): CliError {
  const code = (error as { code?: unknown }).code;
  if (code === 'ERR_UNKNOWN_FILE_EXTENSION' && /^\.[mc]?ts$/.test(extname(path))) {
    return usageError(
      `backfill ${path} is TypeScript, which node does not load by itself: compile it to .js (or .mjs), or run the command under tsx: npx tsx node_modules/idem/dist/cli/main.js backfill ${path}`,
    );
  }
  if (code === 'ERR_UNKNOWN_FILE_EXTENSION') {
    return usageError(`backfill ${path}: node cannot load a ${extname(path)} file; give a .js or .mjs module.`);
  }
  // Node gives no line for a syntax error in an imported module: node --check does.
  const where = error instanceof SyntaxError ? ` (node --check ${path} shows where)` : '';
  return new CliError(`cannot load the job module ${path}: ${reasonOf(error)}${where}.`, ExitCode.failure, {
    cause: error,
  });
}
