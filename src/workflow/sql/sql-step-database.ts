/**
 * The one transaction script of every SQL step database, over a small adapter per dialect
 * (`StepDialect`): the dialects differ in statements and error codes, not in the steps.
 */
import { checkSweepLimit } from '../../store-kit/limits.js';
import { type ConnectionSource, discard } from './connections.js';
import {
  checkStepData,
  checkStepIdentity,
  checkStepRef,
  checkSweepTime,
  type DriverErrors,
  type RecordedStep,
  readOperation,
  StatementFailed,
  type StepDatabase,
  type StepIdentity,
  type StepOutcome,
  type StepRef,
  stepFailure,
  stepMisuse,
} from './step-database.js';

/**
 * What a dialect gives the transaction script: its statements on a connection `C` (which holds
 * the transaction) or on `Q` (the pool, or the one connection, outside any transaction). Each
 * method that runs a statement throws a `StatementFailed` (see `statement`) naming it.
 */
export interface StepDialect<C, Q> {
  readonly errors: DriverErrors;
  /** Creates the table if it is missing; run once, before the first call that needs it. */
  createTable(db: Q): Promise<void>;
  /** Opens the step's transaction on `connection` (and, where the dialect can, locks the step). */
  begin(connection: C, step: StepRef): Promise<void>;
  /** The step's row as `db` sees it. */
  select(db: C | Q, step: StepRef): Promise<RecordedStep | undefined>;
  /** Writes the step's row in the open transaction. */
  insert(connection: C, step: StepIdentity, data: Uint8Array, nowMs: number): Promise<void>;
  commit(connection: C): Promise<void>;
  /** Ends the open transaction; throws when the connection cannot (it is then discarded). */
  rollback(connection: C): Promise<void>;
  /** True when `error` (a driver's) says another holder committed the step's row first. */
  isUniqueViolation(error: unknown): boolean;
  /** False when `fn` ended the transaction itself, where the dialect can tell; absent where it cannot. */
  inTransaction?(connection: C): boolean;
  /** Deletes up to `limit` rows created before `beforeMs`, oldest first; resolves to how many. */
  sweep(db: Q, beforeMs: number, limit: number): Promise<number>;
}

/** How many times a transaction that died of a deadlock or serialization failure runs, in all. */
const MAX_ATTEMPTS = 5;

/** A `StepDatabase` from a dialect and where its connections come from. */
export class SqlStepDatabase<C extends object, Q> implements StepDatabase<C> {
  readonly dialect: string;
  #sql: StepDialect<C, Q>;
  #source: ConnectionSource<C, Q>;
  #table: Once;

  constructor(sql: StepDialect<C, Q>, source: ConnectionSource<C, Q>) {
    this.dialect = sql.errors.dialect;
    this.#sql = sql;
    this.#source = source;
    this.#table = new Once(() => this.#source.outside((db) => this.#sql.createTable(db)));
  }

  async runOnce(step: StepIdentity, fn: (tx: C) => Promise<Uint8Array>): Promise<StepOutcome> {
    checkStepIdentity(this.dialect, step);
    return withRetries(this.#sql.errors, async () => {
      await this.#table.run();
      return this.#source.use((connection) => this.#attempt(connection, step, fn));
    });
  }

  async recorded(step: StepRef): Promise<RecordedStep | undefined> {
    checkStepRef(this.dialect, step);
    return readOperation(this.#sql.errors, 'read the recorded step', async () => {
      await this.#table.run();
      return this.#source.outside((db) => this.#sql.select(db, step));
    });
  }

  async sweep(beforeMs: number, limit?: number): Promise<number> {
    checkSweepTime(this.dialect, beforeMs);
    const most = checkSweepLimit(`${this.dialect} steps`, limit);
    return readOperation(this.#sql.errors, 'sweep the step rows', async () => {
      await this.#table.run();
      return this.#source.outside((db) => this.#sql.sweep(db, beforeMs, most));
    });
  }

  /**
   * One transaction: the step's row if it is recorded, else `fn` and the row. Resolves to
   * `undefined` when it lost a race to another holder yet finds no row (`withRetries` runs it again).
   */
  async #attempt(
    connection: C,
    step: StepIdentity,
    fn: (tx: C) => Promise<Uint8Array>,
  ): Promise<StepOutcome | undefined> {
    const sql = this.#sql;
    await this.#orRollBack(connection, () => sql.begin(connection, step));
    const found = await this.#orRollBack(connection, () => sql.select(connection, step));
    if (found !== undefined) {
      await this.#rollBack(connection);
      return { data: found.data, ran: false };
    }
    let data: Uint8Array;
    try {
      data = await fn(connection);
    } catch (error) {
      await this.#rollBack(connection);
      return committedElsewhere(error, () => sql.select(connection, step));
    }
    await this.#orRollBack(connection, async () => {
      checkStepData(this.dialect, data);
      if (sql.inTransaction?.(connection) === false) throw this.#endedByFn();
    });
    try {
      await sql.insert(connection, step, data, Date.now());
      await sql.commit(connection);
    } catch (error) {
      await this.#rollBack(connection);
      if (!(error instanceof StatementFailed && sql.isUniqueViolation(error.cause))) throw error;
      const winner = await sql.select(connection, step);
      return winner && { data: winner.data, ran: false };
    }
    return { data, ran: true };
  }

  /** Runs `body` inside the open transaction; rolls the transaction back if `body` fails. */
  async #orRollBack<T>(connection: C, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      await this.#rollBack(connection);
      throw error;
    }
  }

  /** Ends the transaction; a connection that cannot even roll back is discarded, not reused. */
  async #rollBack(connection: C): Promise<void> {
    try {
      await this.#sql.rollback(connection);
    } catch {
      discard(connection);
    }
  }

  #endedByFn(): Error {
    return stepMisuse(
      this.dialect,
      "the step's fn ended the transaction itself (a COMMIT, ROLLBACK or BEGIN on the connection it was given), so its writes could not commit together with the step's row, and the step was not recorded. Run no COMMIT, ROLLBACK or BEGIN in fn; nest with SAVEPOINT instead.",
    );
  }
}

/**
 * Runs `attempt` (one whole transaction) until it answers: again, after a short random pause,
 * when it fails with a deadlock or serialization failure, or resolves to `undefined` (it lost a
 * race, yet found no row: the winner rolled back after all), up to `MAX_ATTEMPTS` times. The
 * server has rolled such a transaction back, `fn`'s writes with it, so running `fn` again is safe.
 * Errors of `fn` are thrown as they are; our statements' as `stepFailure`.
 */
async function withRetries(
  driver: DriverErrors,
  attempt: () => Promise<StepOutcome | undefined>,
): Promise<StepOutcome> {
  for (let round = 1; ; round++) {
    const last = round >= MAX_ATTEMPTS;
    let outcome: StepOutcome | undefined;
    try {
      outcome = await attempt();
    } catch (error) {
      if (last || !driver.isRetryable(error instanceof StatementFailed ? error.cause : error))
        throw finalError(driver, error);
    }
    if (outcome !== undefined) return outcome;
    if (last) {
      const vanished = new Error(`another holder's row was gone each time it was read, ${round} times`);
      throw stepFailure(driver, 'read the step another holder committed', vanished, 'step');
    }
    await pause(Math.floor(Math.random() * 20 * round) + 1);
  }
}

/** What `runOnce` throws for `error`: `fn`'s own as it is, our statements' as `stepFailure`. */
function finalError(driver: DriverErrors, error: unknown): unknown {
  return error instanceof StatementFailed ? stepFailure(driver, error.operation, error.cause, 'step') : error;
}

/**
 * After `fn` failed and the transaction was rolled back: the step as another holder committed it
 * meanwhile (`fn` may have failed because of that holder's writes, on a unique key say; the step
 * is done either way), else `fnError` again. A failed read throws `fnError` too: it is the story.
 */
async function committedElsewhere(
  fnError: unknown,
  read: () => Promise<RecordedStep | undefined>,
): Promise<StepOutcome> {
  let row: RecordedStep | undefined;
  try {
    row = await read();
  } catch {
    throw fnError;
  }
  if (row === undefined) throw fnError;
  return { data: row.data, ran: false };
}

export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A task run once, on first need, by every caller that needs it (the table's creation): a
 * failure is not kept, so the next caller tries again.
 */
class Once {
  #task: () => Promise<void>;
  #done = false;
  #running: Promise<void> | undefined;

  constructor(task: () => Promise<void>) {
    this.#task = task;
  }

  async run(): Promise<void> {
    if (this.#done) return;
    this.#running ??= this.#task().then(
      () => {
        this.#done = true;
      },
      (error: unknown) => {
        this.#running = undefined;
        throw error;
      },
    );
    await this.#running;
  }
}
