/** The contract of atomic SQL steps (the implementations land with postgresSteps, sqliteSteps, mysqlSteps). */
export interface StepDatabase<Tx> {
  readonly dialect: string;
  runOnce(
    step: { runId: string; stepIndex: number; name: string },
    fn: (tx: Tx) => Promise<Uint8Array>,
  ): Promise<{ data: Uint8Array; ran: boolean }>;
}
