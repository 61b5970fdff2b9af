import { CliError, reasonOf } from '../cli-error.js';
import { probeTcp } from '../tcp-probe.js';

/** Fails with a one-line message when nothing accepts connections at `url`'s host and port. */
export async function assertReachable(url: URL, what: string, hint: string): Promise<void> {
  try {
    await probeTcp(url.hostname, Number(url.port || (url.protocol === 'https:' ? 443 : 80)));
  } catch (error) {
    throw new CliError(`cannot reach ${what} ${url.origin}: ${reasonOf(error)}. ${hint}`);
  }
}
