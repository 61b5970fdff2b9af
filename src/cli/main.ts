#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import type { Command, CommanderError } from 'commander';
import { isDriverMissing } from '../store-kit/driver.js';
import { CliError, ExitCode } from './cli-error.js';

/**
 * The command line's own packages. They are optional dependencies of idem, installed by default
 * (so `npx idem` works) and left out by `npm i idem --omit=optional`, which library users may
 * prefer: they are loaded here, on first use, never by the library's subpaths.
 */
const CLI_PACKAGES = ['commander', 'cli-progress'] as const;

/** Commander and the commands, loaded now; a one-line `CliError` naming the `npm i` when a package is missing. */
async function loadCommands() {
  try {
    const [commander, check, demo, keys, serve, workflows, notifications, outbox, backfill, ui] = await Promise.all([
      import('commander'),
      import('./commands/check.js'),
      import('./commands/demo.js'),
      import('./commands/keys.js'),
      import('./commands/serve.js'),
      import('./commands/workflows.js'),
      import('./commands/notifications.js'),
      import('./commands/outbox.js'),
      import('./commands/backfill.js'),
      import('./commands/ui.js'),
    ]);
    const register = [
      serve.registerServe,
      check.registerCheck,
      keys.registerKeys,
      workflows.registerWorkflows,
      notifications.registerNotifications,
      outbox.registerOutbox,
      backfill.registerBackfill,
      ui.registerUi,
      demo.registerDemo,
    ];
    return { Command: commander.Command, CommanderError: commander.CommanderError, register };
  } catch (error) {
    if (!CLI_PACKAGES.some((name) => isDriverMissing(error, name))) throw error;
    throw new CliError(
      `the idem command needs ${CLI_PACKAGES.join(' and ')}, optional dependencies that were not installed (--omit=optional?): run npm i ${CLI_PACKAGES.join(' ')} where idem is installed, then try again.`,
      ExitCode.failure,
      { cause: error },
    );
  }
}

type Commands = Awaited<ReturnType<typeof loadCommands>>;

/** The `idem` program, with every command registered. */
function createProgram({ Command, register }: Commands): Command {
  const program = new Command('idem')
    .description('Make HTTP APIs safe to retry: a gateway, a checker, key administration, and durable workflow runs.')
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
  for (const registerCommand of register) registerCommand(program);
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
  let commanderError: typeof CommanderError | undefined;
  try {
    const commands = await loadCommands();
    commanderError = commands.CommanderError;
    await createProgram(commands).parseAsync(argv);
    return Number(process.exitCode ?? ExitCode.ok);
  } catch (error) {
    if (commanderError !== undefined && error instanceof commanderError) {
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
