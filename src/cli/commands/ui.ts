import type { Command } from 'commander';
import { DEFAULT_STORE_URL } from '../store-url.js';

const STORE_HELP = `the store: sqlite:./idem.db | postgres://... | redis://... | mysql://... (default ${DEFAULT_STORE_URL})`;

const UI_HELP = `
The page shows keys by state, keys claimed and taken over per time bucket (read from the store),
a key's record, workflow runs with a step timeline and the notification log (when the store
keeps journals), and, with --metrics, conflicts and mismatches sampled from idem serve.
Reading and releasing need the operator token: --token, IDEM_UI_TOKEN, or a random one; the
printed URL carries a random one after #token= (a fragment: the browser never sends it). Set IDEM_ENCRYPTION_KEY to read results the application encrypted.`;

/** `idem ui`: a small web dashboard over a store. The server is loaded by the action. */
export function registerUi(program: Command): void {
  program
    .command('ui')
    .summary('a web dashboard: keys by state, takeovers, records, workflow runs, notifications')
    .description(
      'Serve a dashboard of an Idem store on 127.0.0.1; reading it and releasing stuck keys need the operator token. ' +
        'SIGTERM or SIGINT stops it.',
    )
    .option('--store <url>', STORE_HELP)
    .option(
      '--host <address>',
      'address to listen on (default 127.0.0.1; elsewhere, the token travels in clear: use a TLS proxy)',
    )
    .option('--port <n>', 'port to listen on; 0 picks a free one (default 0)')
    .option(
      '--token <token>',
      'the operator token reads and releases need (default IDEM_UI_TOKEN, else a random one, printed)',
    )
    .option(
      '--metrics <url>',
      "idem serve's metrics URL (http://host:port/__idem/metrics), sampled for conflicts and mismatches",
    )
    .option('--metrics-token <token>', 'the bearer token of --metrics (default IDEM_METRICS_TOKEN)')
    .option('--metrics-interval <duration>', 'between samples of --metrics (default 15s)')
    .addHelpText('after', UI_HELP)
    .action(async (options) => (await import('../ui/run-ui.js')).runUi(options));
}
