#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { CliError, ExitCode } from './cli-error.js';
import { registerCheck } from './commands/check.js';
import { registerDemo } from './commands/demo.js';
import { registerKeys } from './commands/keys.js';
import { registerServe } from './commands/serve.js';

/** The `idem` program, with every command registered. */
function createProgram(): Command {
  const program = new Command('idem')
    .description('Make HTTP APIs safe to retry: a gateway, a checker, and key administration.')
    .version(packageVersion(), '-v, --version')
    .exitOverride()
    .configureOutput({
      // One line: commander's message, and where to look next.
      outputError: (text, write) => {
        const message = text
          .trim()
          .replace(/^error: /, '')
          .replace(/\s*\n\s*/g, ' ');
        write(`idem: ${message} (see idem --help)\n`);
      },
    });
  registerServe(program);
  registerCheck(program);
  registerKeys(program);
  registerDemo(program);
  return program;
}

/** The version in package.json: two levels up from both src/cli/main.ts and dist/cli/main.js. */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
      .version;
  } catch {
    return 'unknown';
  }
}

/** Runs the program; resolves with the exit code. Nothing but a bug prints a stack trace. */
async function run(argv: string[]): Promise<number> {
  try {
    await createProgram().parseAsync(argv);
    return Number(process.exitCode ?? ExitCode.ok);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander printed its message already; help and --version exit 0.
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (error instanceof CliError) {
      process.stderr.write(`idem: ${error.message}\n`);
      return error.exitCode;
    }
    process.stderr.write(`idem: unexpected error (a bug; please report it):\n${(error as Error)?.stack ?? error}\n`);
    return ExitCode.failure;
  }
}

// A reader that stops early (`idem keys list --json | head -2`) closes stdout under us: stop
// quietly, as other command-line tools do, instead of dying on an unhandled EPIPE.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(Number(process.exitCode ?? ExitCode.ok));
});

process.exitCode = await run(process.argv);
// Drivers and timers of a finished command must not keep the process alive.
setTimeout(() => process.exit(), 50).unref();
