/**
 * Helpers for tests that start a private server of their own on another port (never the shared
 * ones): a free port, a wait for it to listen, and a private PostgreSQL or Redis that a test may
 * stop, start and restart. Every private server is stopped and its files removed when the test
 * process exits, however it exits (SIGINT and SIGTERM included; SIGKILL excepted).
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A TCP port nothing listens on right now, on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/** Resolves once something listens on `port` on loopback; throws after about `seconds` s of refusals. */
export async function waitForPort(port: number, what = 'redis-server', seconds = 5): Promise<void> {
  for (let attempt = 0; attempt < seconds * 20; attempt++) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => resolve(socket.end() && true));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${what} did not listen on ${port} within ${seconds} s`);
}

/** A server this test process runs on its own port and data directory. */
export interface PrivateServer {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** The URL a store connects with. */
  readonly url: string;
  /** Stops it the way a crash would (PostgreSQL: immediate shutdown; Redis: SIGKILL). Data on disk stays. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it and removes its files. Safe to call more than once. */
  dispose(): Promise<void>;
}

/** Synchronous clean-ups still to run, for the `exit` hook. */
const leftovers = new Set<() => void>();
const cleanUpAll = () => {
  for (const cleanUp of leftovers) cleanUp();
  leftovers.clear();
};
process.once('exit', cleanUpAll);
// A runner that gives up on the file ends it with a signal, which skips `exit`: clean up, then
// end as the signal would.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    cleanUpAll();
    process.kill(process.pid, signal);
  });
}

const PG_BIN = '/usr/lib/postgresql/15/bin';

/**
 * A private PostgreSQL 15 cluster in a temporary directory, trust authentication, listening on
 * 127.0.0.1 on a free port (its Unix socket in the same directory). The tests run as root and
 * PostgreSQL refuses root, so the binaries run as the `postgres` user through `runuser`.
 * A restart keeps every committed row, as PostgreSQL always does.
 */
export async function startPrivatePostgres(): Promise<PrivateServer> {
  const dir = mkdtempSync(join(tmpdir(), 'idem-pg-'));
  const data = join(dir, 'data');
  const { uid, gid } = postgresUser();
  chownSync(dir, uid, gid);
  const asPostgres = (command: string, args: string[]) =>
    run('runuser', ['-u', 'postgres', '--', join(PG_BIN, command), ...args], { timeout: 60_000 });
  const port = await freePort();
  const pgCtl = (...args: string[]) => asPostgres('pg_ctl', ['-D', data, ...args]);
  const stopNow = () =>
    spawnSync('runuser', ['-u', 'postgres', '--', join(PG_BIN, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop']);
  const cleanUp = () => {
    stopNow();
    rmSync(dir, { recursive: true, force: true });
  };
  leftovers.add(cleanUp);
  const server: PrivateServer = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await pgCtl('-m', 'immediate', '-w', 'stop');
    },
    start: async () => {
      const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
      await pgCtl('-l', join(dir, 'log'), '-w', '-t', '30', '-o', options, 'start');
    },
    dispose: async () => {
      if (!leftovers.delete(cleanUp)) return;
      cleanUp();
    },
  };
  try {
    await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
    await server.start();
  } catch (error) {
    await server.dispose();
    throw error;
  }
  return server;
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  return { uid: id('-u'), gid: id('-g') };
}

export interface PrivateRedisOptions {
  /**
   * Keep every acknowledged write across a restart: `--appendonly yes --appendfsync always`.
   * Without it (`--save '' --appendonly no`), a restart starts empty and every record is lost.
   * Default false.
   */
  persistent?: boolean;
}

/** A private `redis-server` on a free port, its files in a temporary directory. */
export async function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateServer> {
  const dir = mkdtempSync(join(tmpdir(), 'idem-redis-'));
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const persistence = options.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  let child: ChildProcess | undefined;
  const kill = () => {
    child?.kill('SIGKILL');
  };
  const cleanUp = () => {
    kill();
    rmSync(dir, { recursive: true, force: true });
  };
  leftovers.add(cleanUp);
  const server: PrivateServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      const stopping = child;
      if (stopping === undefined || stopping.exitCode !== null || stopping.signalCode !== null) return;
      const exited = new Promise((resolve) => stopping.once('exit', resolve));
      stopping.kill('SIGKILL');
      await exited;
    },
    start: async () => {
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...persistence];
      child = spawn('redis-server', args, { stdio: 'ignore' });
      child.once('error', () => {});
      await waitForPort(port, 'redis-server', 10);
    },
    dispose: async () => {
      if (!leftovers.delete(cleanUp)) return;
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await server.start();
  } catch (error) {
    await server.dispose();
    throw error;
  }
  return server;
}
