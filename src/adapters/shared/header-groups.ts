/**
 * Header pairs grouped by name, in first-seen order: one value as a string, a repeated header
 * (two `Link`s) as an array. For frameworks that set a header once per name (`reply.header`,
 * `ctx.set`, `res.setHeader`).
 */
export function groupHeaders(pairs: Iterable<readonly [string, string]>): [string, string | string[]][] {
  const groups = new Map<string, string[]>();
  for (const [name, value] of pairs) {
    const values = groups.get(name);
    if (values === undefined) groups.set(name, [value]);
    else values.push(value);
  }
  return [...groups].map(([name, values]) => [name, values.length === 1 ? (values[0] as string) : values]);
}
