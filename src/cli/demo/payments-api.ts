import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** One charge the API made. */
export interface Payment {
  id: string;
  amount: number;
  currency: string;
  /** The Idempotency-Key the request carried, if any: the API itself ignores it. */
  key: string | null;
  createdAt: string;
}

export interface PaymentsApiOptions {
  /** How long a charge takes (the card network), in ms. Default 40. */
  latencyMs?: number;
}

/**
 * The demo's payments API, written the way many are: every `POST /payments` charges the card,
 * whatever came before. `GET /payments` lists what was charged.
 */
export class PaymentsApi {
  readonly payments: Payment[] = [];
  readonly server: Server;
  readonly #latencyMs: number;

  constructor(options: PaymentsApiOptions = {}) {
    this.#latencyMs = options.latencyMs ?? 40;
    this.server = createServer((req, res) => void this.#handle(req, res));
  }

  /** Listens on `port` (0: any free port) and resolves the base URL. */
  async listen(port: number, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return `http://${host}:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Money charged so far, in cents. */
  get charged(): number {
    return this.payments.reduce((sum, payment) => sum + payment.amount, 0);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, value: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(value));
    };
    if (path !== '/payments') return json(404, { error: 'not found: try GET or POST /payments' });
    if (req.method === 'GET') {
      return json(200, { count: this.payments.length, charged: this.charged, payments: this.payments });
    }
    if (req.method !== 'POST') return json(405, { error: 'GET or POST only' });
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    let input: { amount?: unknown; currency?: unknown };
    try {
      input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      return json(400, { error: 'the body must be JSON: {"amount": 1999, "currency": "usd"}' });
    }
    const amount = Number(input.amount ?? 100);
    if (!Number.isInteger(amount) || amount <= 0)
      return json(400, { error: '"amount" must be a whole number of cents' });
    // The charge happens whether or not the client is still there to hear about it.
    await sleep(this.#latencyMs);
    const key = req.headers['idempotency-key'];
    const payment: Payment = {
      id: `pay_${String(this.payments.length + 1).padStart(4, '0')}`,
      amount,
      currency: typeof input.currency === 'string' ? input.currency : 'usd',
      key: typeof key === 'string' ? key.replace(/^"|"$/g, '') : null,
      createdAt: new Date().toISOString(),
    };
    this.payments.push(payment);
    json(201, payment, { location: `/payments/${payment.id}` });
  }
}
