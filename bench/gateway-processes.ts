// The processes the gateway bench starts: the upstream (bench/gateway-upstream.ts) and `idem serve`.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { send } from '../src/testing/http-client.js';
import type { UpstreamReady, UpstreamStats } from './gateway-upstream.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface Upstream {
  url: string;
  /** Payments made so far. */
  payments(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts bench/gateway-upstream.ts in a child process and waits for its port. */
export async function startUpstream(): Promise<Upstream> {
  const entry = fileURLToPath(new URL('./gateway-upstream.ts', import.meta.url));
  const child = fork(entry, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const output = collect(child);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the upstream did not start in 20 s: ${output()}`)), 20_000);
    child.once('message', (message) => {
      clearTimeout(timer);
      resolve((message as UpstreamReady).port);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the upstream exited with ${code}: ${output()}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    async payments() {
      const answer = await send(`${url}/stats`, { method: 'GET' });
      return (answer.json as UpstreamStats).payments;
    },
    stop: () => stop(child),
  };
}

export interface Gateway {
  url: string;
  /** What the gateway wrote to stdout and stderr. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts `idem serve` (src/cli/main.ts under tsx) on a free port and waits for its "listening" line. */
export async function startGateway(upstream: string, store: string): Promise<Gateway> {
  const args = ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--upstream', upstream, '--store', store];
  args.push('--port', '0', '--grace', '2s');
  // Measured as configured by default: stored responses in the clear.
  const { IDEM_ENCRYPTION_KEY: _ignored, ...env } = process.env;
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collect(child);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`idem serve did not start in 30 s: ${output()}`)), 30_000);
    const onData = () => {
      const found = /gateway listening on (http:\/\/\S+)/.exec(output());
      if (found?.[1] === undefined) return;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      resolve(found[1]);
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`idem serve --store ${store} exited with ${code}: ${output().trim()}`));
    });
  });
  return { url, output, stop: () => stop(child) };
}

/** Keeps what the child writes (up to 64 kB); returns a reader. */
function collect(child: ChildProcess): () => string {
  let output = '';
  const keep = (chunk: Buffer) => {
    if (output.length < 64_000) output += chunk.toString('utf8');
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => output;
}

/** SIGTERM, then SIGKILL if the child has not exited 5 s later. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
