import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DBOS } from '@dbos-inc/dbos-sdk';
import { describe, servers, Unreachable } from '../store-targets.js';
import { STEPS, type WorkflowVariant, type Workload, type WorkloadName } from './variants.js';

/** DBOS's system database, created on the benchmark's PostgreSQL server and dropped after. */
export const DBOS_SYSTEM_DATABASE = 'dbos_bench_sys';

/** DBOS Transact, launched with one registered workflow per workload. */
export interface DbosRuntime {
  /** The installed @dbos-inc/dbos-sdk version. */
  version: string;
  /** Where DBOS keeps its records, for the report. */
  where: string;
  variant(workload: WorkloadName): WorkflowVariant;
  /** Shuts DBOS down and drops its system database. */
  close(): Promise<void>;
}

/**
 * (c) DBOS Transact (@dbos-inc/dbos-sdk 5) on the benchmark's PostgreSQL server, its system
 * database a separate one there. Each workload is a registered workflow whose steps are
 * `DBOS.runStep` calls; the writing steps insert through the same business pool as every other
 * variant (not a DBOS data-source transaction, which would need another package). Each run is
 * called directly under its workflow id, as an application would, with DBOS's own pool of 10.
 * DBOS is a process-wide singleton: open it once.
 */
export async function openDbos(workloads: Workload[]): Promise<DbosRuntime> {
  const { default: pg } = await import('pg');
  const admin = new pg.Client({ connectionString: servers.postgres, connectionTimeoutMillis: 2000 });
  admin.on('error', () => {});
  try {
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${DBOS_SYSTEM_DATABASE} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${DBOS_SYSTEM_DATABASE}`);
  } catch (error) {
    await admin.end().catch(() => {});
    throw new Unreachable(`could not create ${DBOS_SYSTEM_DATABASE} on ${servers.postgres}: ${describe(error)}`);
  }
  const systemDatabaseUrl = new URL(servers.postgres);
  systemDatabaseUrl.pathname = `/${DBOS_SYSTEM_DATABASE}`;

  const registered = new Map<WorkloadName, (runId: string) => Promise<void>>();
  for (const workload of workloads) {
    const workflow = async (runId: string): Promise<void> => {
      for (let step = 0; step < STEPS; step++) {
        await DBOS.runStep(() => workload.step(runId, step), { name: `step-${step}` });
      }
    };
    registered.set(workload.name, DBOS.registerWorkflow(workflow, { name: `bench-${workload.name}` }));
  }
  const close = async () => {
    await DBOS.shutdown().catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${DBOS_SYSTEM_DATABASE} WITH (FORCE)`).catch(() => {});
    await admin.end().catch(() => {});
  };
  try {
    DBOS.setConfig({
      name: 'idem-bench',
      // A fixed version: otherwise DBOS hashes the workflow sources at launch.
      applicationVersion: 'bench',
      systemDatabaseUrl: systemDatabaseUrl.href,
      systemDatabasePoolSize: 10,
      logLevel: 'error',
    });
    await DBOS.launch();
  } catch (error) {
    await close();
    throw error;
  }
  return {
    version: installedVersion(),
    where: `${systemDatabaseUrl.host}/${DBOS_SYSTEM_DATABASE} (its system database; business rows in the same orders table)`,
    variant(name) {
      const workflow = registered.get(name);
      if (workflow === undefined) throw new Error(`no DBOS workflow registered for ${name}`);
      return {
        name: 'dbos',
        what: `DBOS.registerWorkflow, ${STEPS} x DBOS.runStep`,
        run: (runId) => DBOS.withNextWorkflowID(runId, () => workflow(runId)),
      };
    },
    close,
  };
}

/** The version of @dbos-inc/dbos-sdk in node_modules (its exports map hides package.json). */
function installedVersion(): string {
  const entry = createRequire(import.meta.url).resolve('@dbos-inc/dbos-sdk'); // <package>/dist/src/index.js
  const manifest = JSON.parse(readFileSync(join(dirname(entry), '..', '..', 'package.json'), 'utf8')) as {
    version?: string;
  };
  return manifest.version ?? 'unknown';
}
