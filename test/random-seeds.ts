import { randomInt } from 'node:crypto';

/** A seed of a randomized test, and whether it is this run's fresh one. */
export interface Seed {
  seed: number;
  fresh: boolean;
}

/**
 * The fixed seeds (known to pass) and one fresh seed for this run, or `given` (to replay one) in
 * its place. A failing fresh seed becomes a fixed seed or a regression case.
 */
export function seedsWithFresh(fixed: readonly number[], given?: number): Seed[] {
  return [
    ...fixed.map((seed) => ({ seed, fresh: false })),
    { seed: given ?? randomInt(2 ** 31), fresh: given === undefined },
  ];
}

/**
 * The options of a seed's test. Under CI a fresh seed's test is a `todo`: its failure is printed
 * with the seed, but only fixed seeds decide whether a change lands. Anywhere else it fails as
 * any test does.
 */
export function seedTestOptions(seed: Seed): { todo?: string } {
  if (!seed.fresh || !process.env.CI) return {};
  return { todo: `fresh seed ${seed.seed}: under CI a failure is reported, not counted; make it a fixed seed` };
}
