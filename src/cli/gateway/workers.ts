import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { assertReachable } from '../check/reachable.js';
import { CliError, ExitCode, reasonOf, usageError } from '../cli-error.js';
import { openStore, parseStoreUrl } from '../store-url.js';
import { parseUpstream } from './gateway.js';
import type { ServeConfig } from './gateway-config.js';

/** Where the supervisor and the workers write (the `Output` of `idem serve`). */
export interface WorkerOutput {
  out(line: string): void;
  err(line: string): void;
}

/** The shortest and longest wait before a crashed worker is replaced, in ms. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 10_000;
/** A worker that ran at least this long before it died starts its replacement's backoff afresh, in ms. */
const STABLE_AFTER_MS = 10_000;

/** Messages between the supervisor and its workers, over the cluster's IPC channel. */
type WorkerMessage = { type: 'idem:out'; line: string } | { type: 'idem:ready' } | { type: 'idem:shutdown' };

/**
 * The `workers` setting: a whole number, or `0` / `auto` for one per core (`availableParallelism()`).
 * Default 1: one process, no supervisor.
 */
export function parseWorkers(raw: { value: unknown; from: string } | undefined): number {
  if (raw === undefined) return 1;
  const text = typeof raw.value === 'string' ? raw.value.trim().toLowerCase() : raw.value;
  if (text === 'auto' || text === 0 || text === '0') return availableParallelism();
  const value = typeof text === 'string' && /^\d+$/.test(text) ? Number(text) : text;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > 256) {
    throw usageError(
      `${raw.from}: ${JSON.stringify(raw.value)} is not a number of workers; give 1 to 256, or auto (or 0) for one per core.`,
    );
  }
  return value;
}

/** True in the process that supervises workers: `--workers` above 1 and not a worker itself. */
export function supervisesWorkers(config: ServeConfig): boolean {
  return config.workers > 1 && cluster.isPrimary;
}

/** In a worker of `idem serve --workers N`: its output, its shutdown signal and its config; else `undefined`. */
export function workerRole(
  config: ServeConfig,
): { config: ServeConfig; output: WorkerOutput; signal: Promise<NodeJS.Signals>; ready(): void } | undefined {
  if (!cluster.isWorker) return undefined;
  const id = cluster.worker?.id ?? 0;
  const send = (message: WorkerMessage) => {
    if (process.connected) process.send?.(message);
  };
  // A worker drains when the supervisor says so (over IPC), or when the supervisor is gone. The
  // signals a terminal or a service manager sends the whole process group are the supervisor's to
  // act on: a worker that acted on them too would take the supervisor's word as a second signal.
  const ignore = () => {};
  process.on('SIGTERM', ignore);
  process.on('SIGINT', ignore);
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    process.on('message', (message: WorkerMessage) => {
      if (message?.type === 'idem:shutdown') resolve('SIGTERM');
    });
    process.once('disconnect', () => resolve('SIGTERM'));
  });
  return {
    // The supervisor checked the upstream once for all workers; a replacement starts even while it is down.
    config: { ...config, upstreamCheck: false },
    output: {
      out: (line) => send({ type: 'idem:out', line }),
      err: (line) => process.stderr.write(`${line.replace(/^idem: /, `idem: worker ${id}: `)}\n`),
    },
    signal,
    ready: () => send({ type: 'idem:ready' }),
  };
}

/**
 * `idem serve --workers N`: forks N workers (this same command, under node:cluster) that share the
 * listening port, each a whole gateway on the shared store, so they behave as one gateway. A
 * worker that dies is replaced, after a backoff that grows while replacements keep dying
 * (100 ms doubling to 10 s). SIGTERM or SIGINT drains every worker; resolves once all exited.
 */
export async function superviseWorkers(
  config: ServeConfig,
  output: WorkerOutput,
  nextSignal: () => Promise<NodeJS.Signals>,
): Promise<void> {
  await checkOnce(config);
  const signal = nextSignal();
  const supervisor = new Supervisor(config.workers, output);
  await supervisor.start();
  await supervisor.stop(await signal);
}

/**
 * What every worker would check at start, done once before any is forked: the store is shared
 * (memory: is not), the upstream answers, and the store opens (its tables are created once, not
 * raced by N workers).
 */
async function checkOnce(config: ServeConfig): Promise<void> {
  const spec = parseStoreUrl(config.store);
  if (spec.kind === 'memory') {
    throw usageError(
      `--workers ${config.workers} needs a store the workers share: memory: keeps keys inside each worker, so a retry ` +
        'that reached another worker would run again. Use sqlite:./idem.db (one file shared by the workers), ' +
        'redis://, postgres:// or mysql://, or run one worker.',
    );
  }
  let upstream: URL;
  try {
    upstream = parseUpstream(config.upstream);
  } catch (error) {
    throw usageError(reasonOf(error));
  }
  if (config.upstreamCheck) {
    await assertReachable(upstream, 'the upstream', 'Start it first, fix --upstream, or pass --no-upstream-check.');
  }
  const store = await openStore(spec, { timeoutMs: Math.min(config.storeTimeoutMs, 5000) });
  await store.close();
}

/** The workers of one `idem serve`: starts them, replaces those that die, and drains them on shutdown. */
class Supervisor {
  readonly #count: number;
  readonly #output: WorkerOutput;
  /** Live workers, with when each started. */
  readonly #workers = new Map<Worker, number>();
  readonly #restarts = new Set<NodeJS.Timeout>();
  /** Lines the first worker printed at start (where it listens); shown once every worker is ready. */
  readonly #banner: string[] = [];
  #bannerFrom: Worker | undefined;
  #ready = 0;
  #started = false;
  #stopping = false;
  /** Crashes in a row of workers that died young: the exponent of the backoff. */
  #streak = 0;
  #fail!: (error: CliError) => void;
  /** Rejects when the first workers cannot start: nothing would ever listen. */
  readonly failed: Promise<never>;

  constructor(count: number, output: WorkerOutput) {
    this.#count = count;
    this.#output = output;
    this.failed = new Promise<never>((_resolve, reject) => {
      this.#fail = reject;
    });
    this.failed.catch(() => {}); // observed by `start`; a rejection after it is none
  }

  /** Forks the workers; resolves once every one listens, rejects if one exits first. */
  async start(): Promise<void> {
    const allReady = new Promise<void>((resolve) => {
      cluster.on('message', (worker, message: WorkerMessage) => {
        if (this.#onMessage(worker, message)) resolve();
      });
    });
    cluster.on('exit', (worker, code, signal) => this.#onExit(worker, code, signal));
    for (let i = 0; i < this.#count; i++) this.#fork();
    await Promise.race([allReady, this.failed]);
    this.#started = true;
  }

  /** Asks every worker to drain, waits for all to exit, and says how it went. */
  async stop(signal: NodeJS.Signals): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#restarts) clearTimeout(timer);
    const force = () => {
      this.#output.err(
        'idem: second signal: stopping every worker now; keys in flight stay claimed until their lease ends.',
      );
      for (const worker of this.#workers.keys()) worker.process.kill('SIGKILL');
      process.exit(ExitCode.failure);
    };
    process.once('SIGTERM', force);
    process.once('SIGINT', force);
    this.#output.err(`idem: ${signal}: draining ${this.#workers.size} worker(s).`);
    const exits = [...this.#workers.keys()].map(
      (worker) =>
        new Promise<number>((resolve) => {
          worker.once('exit', (code) => resolve(code ?? 1));
          worker.send({ type: 'idem:shutdown' } satisfies WorkerMessage, (error: Error | null) => {
            if (error !== null) worker.process.kill('SIGTERM');
          });
        }),
    );
    const codes = await Promise.all(exits);
    const failed = codes.filter((code) => code !== 0).length;
    if (failed > 0) process.exitCode = ExitCode.failure;
    this.#output.err(
      `idem: stopped: ${codes.length} worker(s) exited${failed > 0 ? `, ${failed} of them with an error` : ''}.`,
    );
  }

  #fork(): void {
    const worker = cluster.fork();
    this.#workers.set(worker, Date.now());
  }

  /** True when this message made every worker of the first start ready. */
  #onMessage(worker: Worker, message: WorkerMessage): boolean {
    if (message?.type === 'idem:out') {
      if (this.#started) return false;
      this.#bannerFrom ??= worker;
      if (worker === this.#bannerFrom) this.#banner.push(message.line);
      return false;
    }
    if (message?.type !== 'idem:ready') return false;
    const pid = worker.process.pid;
    if (this.#started) {
      this.#output.err(`idem: worker ${worker.id} (pid ${pid}) replaced the one that died; serving.`);
      return false;
    }
    this.#ready += 1;
    if (this.#ready < this.#count) return false;
    // The workers line first: whoever waits for the "listening" line then has the pids too.
    const pids = [...this.#workers.keys()].map((each) => each.process.pid).join(', ');
    this.#output.out(
      `idem: workers: ${this.#count} (pids ${pids}) share the port and the store; a worker that dies is replaced. ` +
        'Health, ready and metrics are answered by whichever worker takes the connection: metrics count that worker only.',
    );
    for (const line of this.#banner) this.#output.out(line);
    return true;
  }

  #onExit(worker: Worker, code: number | null, signal: string | null): void {
    const bornAt = this.#workers.get(worker) ?? Date.now();
    this.#workers.delete(worker);
    if (this.#stopping) return;
    const how = signal === null ? `with code ${code}` : `on ${signal}`;
    if (!this.#started) {
      // A worker that cannot start (port taken, store refused) would fail the same way again.
      for (const other of this.#workers.keys()) other.process.kill('SIGTERM');
      this.#stopping = true;
      this.#fail(
        new CliError(
          `worker ${worker.id} exited ${how} before it listened (its reason is above); nothing is serving.`,
          code === ExitCode.usage ? ExitCode.usage : ExitCode.failure,
        ),
      );
      return;
    }
    this.#streak = Date.now() - bornAt >= STABLE_AFTER_MS ? 0 : this.#streak + 1;
    const delayMs = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** this.#streak);
    this.#output.err(
      `idem: worker ${worker.id} (pid ${worker.process.pid}) exited ${how}; its requests in flight keep their keys ` +
        `claimed until the lease ends. Starting a new worker in ${delayMs} ms.`,
    );
    const timer = setTimeout(() => {
      this.#restarts.delete(timer);
      if (!this.#stopping) this.#fork();
    }, delayMs);
    this.#restarts.add(timer);
  }
}
