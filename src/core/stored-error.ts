/**
 * How `idempotent()` keeps an error that is the operation's outcome (see `storeErrors`) and how it
 * gives it back on a replay: as plain data in the store, rebuilt as an error for every retry.
 */

/** An error as it is stored: plain data that survives the store and a restart. */
export interface StoredError {
  /** The error's `name`: `'Error'`, `'TypeError'`, `'DeclinedError'`... */
  name: string;
  message: string;
  /**
   * The error's `cause`: stored the same way when it is an error (up to 8 levels deep), as it is
   * when it is a string, number, boolean or null; left out otherwise.
   */
  cause?: StoredError | string | number | boolean | null;
  /** The error's other own fields whose values are strings, numbers, booleans or null (`code`, `status`...). */
  [field: string]: unknown;
}

/** An error class that `errors` may name: any class whose instances are errors. */
export type ErrorClass = abstract new (...args: never[]) => Error;

export interface ErrorRevivalOptions {
  /**
   * Error classes that stored errors come back as, so `instanceof` holds on a retry. A stored
   * error takes the class whose `name` equals the error's `name` (so give your classes a `name`:
   * `override name = 'DeclinedError'`). It is made without running the class's constructor: it
   * gets the class's prototype, then its message, name, cause and stored fields. Default: none.
   */
  errors?: readonly ErrorClass[];
  /**
   * Rebuilds a stored error, before `errors` is looked at; its causes go through it too. Return
   * the error to throw, or `undefined` to leave it to `errors` and the default. Default: none.
   */
  reviveError?: (stored: StoredError) => unknown;
}

const MAX_CAUSE_DEPTH = 8;

/** What of `error` is stored: name, message, own plain fields (`code`, `status`...) and the cause chain. */
export function describeError(error: unknown, depth = 0): StoredError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const stored: StoredError = { name: error.name, message: error.message };
  for (const [field, value] of Object.entries(error)) {
    if (field !== 'cause' && isPlain(value)) stored[field] = value;
  }
  const { cause } = error;
  if (cause instanceof Error && depth < MAX_CAUSE_DEPTH) stored.cause = describeError(cause, depth + 1);
  else if (isPlain(cause)) stored.cause = cause;
  return stored;
}

/**
 * The error to throw for `stored` on a replay: what `reviveError` returns, else an instance of the
 * class in `errors` named like it, else an `Error`; with its name, message, fields and cause, and
 * `idempotentReplay: true` so the caller can tell a replay from a fresh failure.
 */
export function reviveError(stored: StoredError, options: ErrorRevivalOptions): unknown {
  const revived = revive(stored, options, classesByName(options.errors ?? []));
  if (typeof revived === 'object' && revived !== null) {
    Object.defineProperty(revived, 'idempotentReplay', { value: true, enumerable: true, configurable: true });
  }
  return revived;
}

function revive(stored: StoredError, options: ErrorRevivalOptions, classes: Map<string, ErrorClass>): unknown {
  const custom = options.reviveError?.(stored);
  if (custom !== undefined) return custom;
  const { name, message, cause, ...fields } = stored;
  const errorClass = classes.get(String(name)) ?? Error;
  // Error's own constructor with the class as new.target: a real Error (stack included) whose
  // prototype is the class's, without calling a constructor whose arguments we cannot know.
  const error = Reflect.construct(Error, [String(message)], errorClass) as Error;
  if (error.name !== name) {
    Object.defineProperty(error, 'name', { value: String(name), writable: true, configurable: true });
  }
  Object.assign(error, fields);
  if ('cause' in stored) {
    const revivedCause =
      typeof cause === 'object' && cause !== null ? revive(cause as StoredError, options, classes) : cause;
    Object.defineProperty(error, 'cause', { value: revivedCause, writable: true, configurable: true });
  }
  return error;
}

/** Each class under its `name`, and under its prototype's own `name` when it sets one there. */
function classesByName(errors: readonly ErrorClass[]): Map<string, ErrorClass> {
  const classes = new Map<string, ErrorClass>();
  for (const errorClass of errors) {
    const protoName: unknown = Object.hasOwn(errorClass.prototype, 'name') ? errorClass.prototype.name : undefined;
    for (const name of [errorClass.name, protoName]) {
      if (typeof name === 'string' && name !== '' && !classes.has(name)) classes.set(name, errorClass);
    }
  }
  return classes;
}

function isPlain(value: unknown): value is string | number | boolean | null {
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}
