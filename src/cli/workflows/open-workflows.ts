/** The store and the `Workflows` every `idem workflows` command works on, and its errors as one line. */
import { ErrorCode, isIdempotencyError } from '../../core/errors.js';
import { isJournalStore, type JournalStore } from '../../core/journal.js';
import { Workflows, type WorkflowsOptions } from '../../workflow/index.js';
import { CliError, ExitCode, reasonOf, usageError } from '../cli-error.js';
import { encryptionKeysFromEnv } from '../encryption-env.js';
import { DEFAULT_STORE_URL, describeStore, openStore, parseStoreUrl, type StoreSpec } from '../store-url.js';

const JOURNAL_STORES = 'sqlite:./idem.db, postgres://..., redis://... or mysql://...';

/** An open store that keeps journals, and how `--store` named it. */
export interface OpenJournalStore {
  store: JournalStore;
  spec: StoreSpec;
}

/**
 * Opens the store `--store` names, when workflow runs can live in it: not `memory:` (another
 * process's runs are not there), not DynamoDB or any store without journals.
 */
export async function openJournalStore(url: string | undefined): Promise<OpenJournalStore> {
  const raw = (url ?? DEFAULT_STORE_URL).trim();
  if (/^dynamodb:/i.test(raw)) {
    throw usageError(
      `--store names a DynamoDB store, which keeps no journals, so workflow runs cannot live in it: use ${JOURNAL_STORES}.`,
    );
  }
  const spec = parseStoreUrl(raw);
  if (spec.kind === 'memory') {
    throw usageError(
      `memory: lives inside one process, so no workflow run of another is there: name the store your workflows use, ${JOURNAL_STORES}.`,
    );
  }
  const store = await openStore(spec);
  if (!isJournalStore(store)) {
    await store.close();
    throw usageError(
      `the ${spec.kind} store at ${describeStore(spec)} keeps no journals in this version of idem, so workflow runs cannot live in it: use a store that does (${JOURNAL_STORES}), or upgrade idem.`,
    );
  }
  return { store, spec };
}

/** `Workflows` over `store`, sealing and opening with the keys from the environment. */
export function workflowsOver<W extends Workflows>(
  store: JournalStore,
  make: (options: WorkflowsOptions) => W,
  options: Omit<WorkflowsOptions, 'store'> = {},
): W {
  const keys = encryptionKeysFromEnv();
  try {
    return make({ ...options, store, ...(keys === undefined ? {} : { encryptionKey: keys }) });
  } catch (error) {
    throw usageError(`${reasonOf(error)}.`);
  }
}

/** Runs `use` with `Workflows` over the store `--store` names, then closes the store; errors become one line. */
export async function withWorkflows(
  url: string | undefined,
  use: (workflows: Workflows) => Promise<void>,
): Promise<void> {
  const { store, spec } = await openJournalStore(url);
  try {
    await use(workflowsOver(store, (options) => new Workflows(options)));
  } catch (error) {
    throw cliErrorOf(error, spec);
  } finally {
    await store.close();
  }
}

/** An error of a workflows command as the line to print. */
export function cliErrorOf(error: unknown, spec: StoreSpec): CliError {
  if (error instanceof CliError) return error;
  if (isIdempotencyError(error, ErrorCode.WORKFLOW_NOT_FOUND)) return new CliError(`${reasonOf(error)}.`);
  if (isIdempotencyError(error, ErrorCode.KEY_INVALID)) return usageError(`workflow id: ${reasonOf(error)}.`);
  if (isIdempotencyError(error, ErrorCode.RESULT_UNREADABLE)) {
    const hint =
      encryptionKeysFromEnv() === undefined
        ? 'set IDEM_ENCRYPTION_KEY to the key the workflows run with'
        : 'check IDEM_ENCRYPTION_KEY, and IDEM_ENCRYPTION_OLD_KEYS for keys used before a rotation';
    return new CliError(
      `a run in the ${spec.kind} store cannot be read: ${reasonOf(error)}; ${hint}.`,
      ExitCode.failure,
      {
        cause: error,
      },
    );
  }
  return new CliError(
    `the ${spec.kind} store at ${describeStore(spec)} failed: ${reasonOf(error)}.`,
    ExitCode.failure,
    {
      cause: error,
    },
  );
}
