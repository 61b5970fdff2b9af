import { spawn } from 'node:child_process';

/** How a child process of a crash test ended, and what it printed. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
}

/**
 * Runs the fixture `workerPath` (with this process's loader) on `job`, passed as JSON in its first
 * argument, with `KILL_AT` set to `killAt` (the point where it kills itself with SIGKILL) or unset;
 * resolves when it exits, however it exits.
 */
export function runChild(workerPath: string, job: unknown, killAt?: string): Promise<ChildExit> {
  const env = { ...process.env };
  if (killAt === undefined) delete env.KILL_AT;
  else env.KILL_AT = killAt;
  const child = spawn(process.execPath, [...process.execArgv, workerPath, JSON.stringify(job)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout }));
  });
}
