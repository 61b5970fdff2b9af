import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { RunningServer } from '../../src/testing/index.js';
import { listen } from '../http/serve.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'src/cli/main.ts');

/** The real `idem` binary, run from source: `node --import tsx src/cli/main.ts ...`. */
export function idemArgs(args: string[]): string[] {
  return ['--import', 'tsx', MAIN, ...args];
}

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `idem ...args` to the end. */
export function runIdem(
  args: string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, idemArgs(args), {
      cwd: ROOT,
      env: { ...process.env, ...options.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`idem ${args.join(' ')} did not finish in time.\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running `idem serve`. */
export interface RunningIdem {
  url: string;
  child: ChildProcess;
  output(): { stdout: string; stderr: string };
  /** Sends `signal` and resolves the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `idem serve ...args` and waits for its "listening on" line. */
export function startIdem(args: string[]): Promise<RunningIdem> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, idemArgs(['serve', '--port', '0', ...args]), {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const exited = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`idem serve did not start.\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 20_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(stdout);
      if (match !== null) {
        clearTimeout(timer);
        resolve({
          url: match[1] as string,
          child,
          output: () => ({ stdout, stderr }),
          stop: async (signal = 'SIGTERM') => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`idem serve exited with ${code} before listening.\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });
}

/** A charge the test upstream made. */
export interface Charge {
  id: string;
  amount: unknown;
  auth: string | null;
}

/**
 * A plain, non-idempotent upstream: every POST /charges charges again. Its body may ask it to be
 * slow (`ms`); /echo answers what it received; /stream streams slowly; /fail answers 500 once.
 */
export class TestUpstream {
  readonly charges: Charge[] = [];
  readonly hits = new Map<string, number>();
  #server: RunningServer | undefined;

  get url(): string {
    if (this.#server === undefined) throw new Error('start() the upstream first');
    return this.#server.url;
  }

  hitCount(path: string): number {
    return this.hits.get(path) ?? 0;
  }

  /** Listens on loopback, on `port` when given (to come back on the same address), else any free port. */
  async start(port?: number): Promise<this> {
    const server = createServer((req, res) => void this.#handle(req, res));
    if (port === undefined) {
      this.#server = await listen(server);
      return this;
    }
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.#server = {
      url: `http://127.0.0.1:${port}`,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
    return this;
  }

  async close(): Promise<void> {
    await this.#server?.close();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] as string;
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const raw = Buffer.concat(chunks);
    let body: Record<string, unknown> = {};
    try {
      body = raw.length > 0 ? JSON.parse(raw.toString('utf8')) : {};
    } catch {
      body = {};
    }
    if (req.method !== 'GET') this.hits.set(path, this.hitCount(path) + 1);
    const json = (status: number, value: unknown, headers: Record<string, string | string[]> = {}) => {
      const text = JSON.stringify(value);
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        ...headers,
      });
      res.end(text);
    };
    if (typeof body.ms === 'number') await sleep(body.ms);
    switch (`${req.method} ${path}`) {
      case 'GET /charges':
        return json(200, { count: this.charges.length, charges: this.charges });
      case 'POST /charges': {
        const auth = req.headers.authorization ?? null;
        const charge = { id: `ch_${this.charges.length + 1}`, amount: body.amount ?? null, auth };
        this.charges.push(charge);
        return json(201, charge, {
          location: `/charges/${charge.id}`,
          'set-cookie': ['a=1', 'b=2'],
          'x-run': charge.id,
        });
      }
      case 'POST /echo':
      case 'PUT /echo':
        return json(200, {
          method: req.method,
          url: req.url,
          headers: req.headers,
          body: raw.toString('base64'),
          run: this.hitCount(path),
        });
      case 'POST /stream': {
        res.writeHead(200, { 'content-type': 'text/plain' });
        const count = Number(body.chunks ?? 5);
        for (let i = 0; i < count; i++) {
          res.write(`chunk ${i} run ${this.hitCount(path)}\n`);
          await sleep(Number(body.gapMs ?? 50));
        }
        res.end();
        return;
      }
      case 'POST /fail':
        return this.hitCount(path) === 1
          ? json(500, { error: 'first call fails' })
          : json(201, { ok: this.hitCount(path) });
      case 'POST /broken':
        // Starts a response and dies halfway through it.
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
        res.write('only part of it');
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      case 'POST /hang':
        // Never answers: for shutdown and timeout tests.
        return;
      default:
        return json(404, { error: `no route ${req.method} ${path}` });
    }
  }
}

/** A fresh temporary directory for SQLite files. */
export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'idem-cli-test-'));
}

export function newKey(): string {
  return randomUUID();
}

/** Sends `fn` until it stops answering 409 (in progress), for at most `ms`. */
export async function untilSettled<T extends { status: number }>(fn: () => Promise<T>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const answer = await fn();
    if (answer.status !== 409 || Date.now() > deadline) return answer;
    await sleep(50);
  }
}
