// CPU time of a process and all its descendants, read from /proc (Linux only).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** User plus system CPU of one process, in clock ticks; 0 when it is gone. */
function ownTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces: the fields after it start past the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
  } catch {
    return 0;
  }
}

/** The pids of `pid`'s children (every thread's), from /proc/<pid>/task/<tid>/children. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text !== '') for (const child of text.split(' ')) found.push(Number(child));
    }
  } catch {
    // gone, or /proc without the children file
  }
  return found;
}

/**
 * CPU time of `pid` and every process below it that is alive now, in microseconds. Descendants
 * that exited in between are not counted; a worker replaced mid-run loses its share.
 */
export function treeCpuUs(pid: number): number {
  let ticks = 0;
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.pop() as number;
    ticks += ownTicks(next);
    queue.push(...childrenOf(next));
  }
  return (ticks * 1_000_000) / clockTicks();
}
