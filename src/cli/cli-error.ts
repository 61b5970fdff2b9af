/** Exit codes of the `idem` command. */
export const ExitCode = {
  /** Everything worked; for `idem check`, every scenario passed. */
  ok: 0,
  /** Something failed at run time: a store or upstream could not be reached, a check failed. */
  failure: 1,
  /** The command line or config file is wrong: a bad flag, duration, store URL. */
  usage: 2,
  /**
   * Nothing to do, and nothing changed: `idem workflows cancel` of a run that finished, `resume`
   * of a run that is not parked. Told apart from 0 so that a script sees the run was not changed.
   */
  unchanged: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * An error the CLI reports as one line, `idem: <message>`, and exits with `exitCode`. Anything
 * else that reaches the top is a bug, and only then is a stack trace printed.
 */
export class CliError extends Error {
  override readonly name = 'CliError' as const;
  readonly exitCode: ExitCode;

  constructor(message: string, exitCode: ExitCode = ExitCode.failure, options: { cause?: unknown } = {}) {
    super(message, options);
    this.exitCode = exitCode;
  }
}

/** A mistake on the command line or in the config file (exit code 2). */
export function usageError(message: string): CliError {
  return new CliError(message, ExitCode.usage);
}

/** The innermost message of an error chain, without Idem's `[idem] [store]` prefixes. */
export function reasonOf(error: unknown): string {
  let current: unknown = error;
  let message = error instanceof Error ? error.message : String(error);
  for (let depth = 0; depth < 5 && current instanceof Error && current.cause !== undefined; depth++) {
    current = current.cause;
    if (current instanceof Error && current.message !== '') message = current.message;
    else if (current instanceof AggregateError) break;
  }
  if (current instanceof AggregateError && current.errors.length > 0) {
    message = current.errors
      .map((inner: unknown) => (inner instanceof Error ? inner.message : String(inner)))
      .join('; ');
  }
  const line = message.replace(/^(\[[^\]]+\] )+/, '').split('\n')[0] ?? message;
  return line.replace(/\.+$/, '');
}
