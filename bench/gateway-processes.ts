// The processes the gateway bench starts: the upstream (bench/gateway-upstream.ts) and `idem serve`.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { send } from '../src/testing/http-client.js';
import type { UpstreamReady, UpstreamStats } from './gateway-upstream.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface Upstream {
  url: string;
  /** The upstream's process id, for its CPU time. */
  pid: number;
  /** Payments made so far. */
  payments(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts bench/gateway-upstream.ts in a child process and waits for its port. */
export async function startUpstream(): Promise<Upstream> {
  const { child, port } = await forkWithPort('./gateway-upstream.ts', []);
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    pid: child.pid as number,
    async payments() {
      const answer = await send(`${url}/stats`, { method: 'GET' });
      return (answer.json as UpstreamStats).payments;
    },
    stop: () => stop(child),
  };
}

/** A process that proxies to the upstream: the minimal Node proxy, nginx, or `idem serve`. */
export interface Proxy {
  url: string;
  /** The process id (the primary's with workers): its tree's CPU time is the proxy's. */
  pid: number;
  stop(): Promise<void>;
}

/** Forks a bench script under tsx and waits for the port it sends over IPC. */
async function forkWithPort(script: string, args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const entry = fileURLToPath(new URL(script, import.meta.url));
  const child = fork(entry, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const output = collect(child);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start in 20 s: ${output()}`)), 20_000);
    child.once('message', (message) => {
      clearTimeout(timer);
      resolve((message as UpstreamReady).port);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}: ${output()}`));
    });
  });
  return { child, port };
}

/** Starts bench/minimal-proxy.ts: node:http and a keep-alive agent, written the obvious way. */
export async function startMinimalProxy(upstream: string): Promise<Proxy> {
  const { child, port } = await forkWithPort('./minimal-proxy.ts', [upstream]);
  return { url: `http://127.0.0.1:${port}`, pid: child.pid as number, stop: () => stop(child) };
}

/** Where nginx is looked for; the bench skips it when it is not there. */
export const NGINX = '/usr/sbin/nginx';

/**
 * Starts nginx in the foreground (one worker process, access log off, keep-alive connections to
 * the upstream) with a config of its own in `directory`, on `port`.
 */
export async function startNginx(upstream: string, directory: string, port: number): Promise<Proxy> {
  const target = new URL(upstream);
  const config = join(directory, 'nginx.conf');
  writeFileSync(
    config,
    `daemon off;
worker_processes 1;
pid ${join(directory, 'nginx.pid')};
error_log ${join(directory, 'nginx-error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${directory}/client_body;
  proxy_temp_path ${directory}/proxy;
  fastcgi_temp_path ${directory}/fastcgi;
  uwsgi_temp_path ${directory}/uwsgi;
  scgi_temp_path ${directory}/scgi;
  upstream api { server ${target.host}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  const child = spawn(NGINX, ['-c', config, '-e', join(directory, 'nginx-error.log')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = collect(child);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${output()}`);
    const up = await send(`${url}/stats`, { method: 'GET' }).then(
      (answer) => answer.status === 200,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) {
      await stop(child);
      throw new Error(`nginx did not answer in 10 s: ${output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, pid: child.pid as number, stop: () => stop(child) };
}

export interface Gateway {
  url: string;
  pid: number;
  /** What the gateway wrote to stdout and stderr. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts `idem serve` (src/cli/main.ts under tsx) on a free port and waits for its "listening" line. */
export async function startGateway(upstream: string, store: string, extra: string[] = []): Promise<Gateway> {
  const args = ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--upstream', upstream, '--store', store];
  args.push('--port', '0', '--grace', '2s', ...extra);
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
  return { url, pid: child.pid as number, output, stop: () => stop(child) };
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
