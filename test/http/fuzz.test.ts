import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Store } from '../../src/core/store.js';
import type { HttpEvent } from '../../src/http/index.js';
import { createStore, dropStore } from '../stores/sqlite.factory.js';
import { HttpPool, mapLimit, type PooledRequest, rawRequest } from './fixtures/client.js';
import { FUZZ_ADAPTERS, type FuzzAdapter, fuzzNamespace } from './fixtures/fuzz-adapters.js';
import { CALLER } from './serve.js';

/** Reproduce a run with IDEM_FUZZ_SEED=<seed>; IDEM_FUZZ_CASES sets the malformed requests per adapter. */
const SEED = Number(process.env.IDEM_FUZZ_SEED ?? randomInt(2 ** 31));
const MALFORMED_PER_ADAPTER = Number(process.env.IDEM_FUZZ_CASES ?? 4000);
const BATCH = 500;
const IN_FLIGHT = 50;

/** Every case comes from one known caller: Idem refuses keyed requests it cannot scope. */
const AUTH = `Authorization: ${CALLER.authorization}\r\n`;

const serverModule = new URL('./fixtures/fuzz-server.ts', import.meta.url).pathname;

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)] as T;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  string(alphabet: string, min: number, max: number): string {
    let out = '';
    for (let n = this.int(min, max); n > 0; n--) out += alphabet[this.int(0, alphabet.length - 1)];
    return out;
  }

  bytes(min: number, max: number, low = 0, high = 255): Buffer {
    const out = Buffer.alloc(this.int(min, max));
    for (let i = 0; i < out.length; i++) out[i] = this.int(low, high);
    return out;
  }

  hex(length: number): string {
    return this.string('0123456789abcdef', length, length);
  }
}

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/** Printable ASCII inside a quoted key, without the two characters that need escaping. */
const QUOTABLE = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i))
  .filter((c) => c !== '"' && c !== '\\')
  .join('');
/** Control bytes a header value may not carry (CR and LF have a case of their own; tab is whitespace). */
const CONTROLS = [...Array.from({ length: 0x20 }, (_, i) => i).filter((b) => ![0x09, 0x0a, 0x0d].includes(b)), 0x7f];

/**
 * What a case must get back:
 * - `refused`: a 4xx (from Idem or from Node's parser), never a run;
 * - `unprotected`: a 4xx, or a 2xx that Idem did not record;
 * - `stored`: a 201 that Idem recorded;
 * - `any`: any 2xx or 4xx.
 */
type Expectation = 'refused' | 'unprotected' | 'stored' | 'any';

interface FuzzCase {
  label: string;
  malformed: boolean;
  expect: Expectation;
  /** Bytes of one whole request, sent on a raw socket... */
  raw?: Buffer;
  /** ...or a request node:http's client can send, on a keep-alive connection. */
  pooled?: PooledRequest & { path: string };
  /** The client gives up mid-body: no answer at all is fine. */
  mayDrop?: boolean;
  /** Sent after this one, on the same key: must not be answered with the first one's response. */
  followUp?: FuzzCase;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

function rawHttp(method: string, path: string, headers: [string | Buffer, string | Buffer][], body: Buffer): Buffer {
  const lines: Buffer[] = [
    Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${AUTH}`),
  ];
  for (const [name, value] of headers)
    lines.push(Buffer.from(name), Buffer.from(': '), Buffer.from(value), Buffer.from('\r\n'));
  lines.push(Buffer.from(`Content-Length: ${body.length}\r\n\r\n`), body);
  return Buffer.concat(lines);
}

/** A key value that is certainly malformed, as raw header bytes, and how it was made. */
function malformedKey(rng: Rng): [string, Buffer] {
  const tokens = (min = 1, max = 20) => rng.string(TCHARS, min, max);
  const quoteMaybe = (inner: Buffer) =>
    rng.chance(0.5) ? Buffer.concat([Buffer.from('"'), inner, Buffer.from('"')]) : inner;
  switch (rng.int(0, 9)) {
    case 0: {
      const controls = Buffer.from(Array.from({ length: rng.int(1, 3) }, () => rng.pick(CONTROLS)));
      return ['control byte', quoteMaybe(Buffer.concat([Buffer.from(tokens()), controls, Buffer.from(tokens())]))];
    }
    case 1:
      return ['lone CR or LF', Buffer.from(`${tokens()}${rng.pick(['\r', '\n'])}${tokens()}`)];
    case 2: {
      const high = rng.bytes(1, 6, 0x80, 0xff);
      return ['byte over 0x7f', quoteMaybe(Buffer.concat([Buffer.from(tokens(0)), high, Buffer.from(tokens(0))]))];
    }
    case 3: {
      let text = '';
      for (let n = rng.int(1, 6); n > 0; n--) {
        const range = rng.pick([
          [0x80, 0x7ff],
          [0x800, 0xd7ff],
          [0xe000, 0xfffd],
          [0x10000, 0x10ffff],
        ] as const);
        text += String.fromCodePoint(rng.int(range[0], range[1]));
      }
      return ['non-ASCII UTF-8', quoteMaybe(Buffer.from(`${tokens(0)}${text}${tokens(0)}`, 'utf8'))];
    }
    case 4: {
      const separator = rng.pick([',', ';', '"', '\\', ' ', '\t', ', ', ' ;']);
      return ['separator in a bare key', Buffer.from(`${tokens()}${separator}${tokens()}`)];
    }
    case 5: {
      const inner = rng.string(QUOTABLE, 0, 30);
      const broken = [
        `"${inner}`,
        `"${inner}\\${rng.pick(['a', 'n', 'x', '0', ' ', "'"])}${inner}"`,
        `"${inner}";${tokens()}=${tokens()}`,
        `"${inner}", "${inner}"`,
        `"${inner}"${tokens()}`,
        '""',
        `"${inner}\\`,
        `${tokens()}"${inner}"`,
      ];
      return ['broken quoted string', Buffer.from(rng.pick(broken))];
    }
    case 6: {
      const long = rng.string(TCHARS, 256, rng.chance(0.8) ? 2000 : 12_000);
      return ['key over 255 characters', Buffer.from(rng.chance(0.5) ? `"${long}"` : long)];
    }
    case 7:
      return ['head over the 16 KiB limit', Buffer.from(rng.string(TCHARS, 17_000, 40_000))];
    case 8:
      return ['blank', Buffer.from(rng.string(' \t', 0, 8))];
    default:
      return [
        'list of keys',
        Buffer.from(Array.from({ length: rng.int(2, 4) }, () => tokens()).join(rng.pick([',', ', ', ' ,']))),
      ];
  }
}

/** A valid key: a bare token or a Structured Field string, unique by its random tail. */
function validKey(rng: Rng): string {
  const tail = rng.hex(16);
  if (rng.chance(0.5)) return `${rng.string(TCHARS, 0, 200)}${tail}`;
  const inner = rng.string(`${QUOTABLE}"\\`, 0, 150);
  return `"${inner.replace(/[\\"]/g, (c) => `\\${c}`)}${tail}"`;
}

const jsonBody = (rng: Rng) =>
  Buffer.from(JSON.stringify({ amount: rng.int(1, 10_000), note: rng.string(QUOTABLE, 0, 30) }));

function keyCase(rng: Rng): FuzzCase {
  const body = jsonBody(rng);
  const method = rng.pick(['POST', 'POST', 'PATCH']);
  const send = (
    label: string,
    headers: [string | Buffer, string | Buffer][],
    expect: Expectation,
    malformed = true,
  ) => ({
    label,
    malformed,
    expect,
    raw: rawHttp(method, '/fuzz', [['Content-Type', 'application/json'], ...headers], body),
  });
  const roll = rng.int(0, 19);
  if (roll < 13) {
    const [label, value] = malformedKey(rng);
    return send(label, [[rng.pick(['Idempotency-Key', 'idempotency-key', 'IDEMPOTENCY-KEY']), value]], 'refused');
  }
  if (roll < 15) {
    const first = validKey(rng);
    const copies = [first, ...Array.from({ length: rng.int(1, 3) }, () => (rng.chance(0.5) ? first : validKey(rng)))];
    return send(
      'repeated header',
      copies.map((value) => ['Idempotency-Key', value]),
      'refused',
    );
  }
  if (roll < 16) {
    const name = rng.pick([
      'Idempotency Key',
      'Idempotency-Key ',
      'Idempotency-K\u00e9y',
      'Idempotency\0Key',
      '"Idempotency-Key"',
    ]);
    return send('malformed header name', [[Buffer.from(name, 'utf8'), validKey(rng)]], 'refused');
  }
  if (roll < 17) {
    const name = rng.pick(['Idempotency_Key', 'X-Idempotency-Key', 'Idempotency-Keys', 'Idempotency']);
    return send('near-miss header name', [[name, validKey(rng)]], 'unprotected');
  }
  return send('valid key', [[rng.pick(['Idempotency-Key', 'IDEMPOTENCY-KEY']), validKey(rng)]], 'stored', false);
}

function brokenJson(rng: Rng): [string, Buffer] {
  const valid = JSON.stringify({ amount: rng.int(1, 999), items: [1, 'two', { three: null }], ok: true });
  switch (rng.int(0, 11)) {
    case 0:
      return ['truncated JSON', Buffer.from(valid.slice(0, rng.int(0, valid.length - 1)))];
    case 1: {
      const at = rng.int(0, valid.length);
      return [
        'JSON with a stray character',
        Buffer.from(`${valid.slice(0, at)}${rng.pick([',', '}', ']', "'", '\\', ':', '"'])}${valid.slice(at)}`),
      ];
    }
    case 2:
      return ['random bytes as JSON', rng.bytes(1, 400)];
    case 3:
      return ['random text as JSON', Buffer.from(rng.string(QUOTABLE, 1, 400))];
    case 4:
      return [
        'JSON-ish syntax',
        Buffer.from(
          rng.pick([
            '{a:1}',
            "{'a':1}",
            '[1,]',
            '{"a":1,}',
            '{"a":NaN}',
            '{"a":Infinity}',
            '// c\n{}',
            '{"a":1}}',
            '{"a":01}',
            '{"a":"\\x41"}',
            'undefined',
          ]),
        ),
      ];
    case 5: {
      const depth = rng.int(1000, 40_000);
      const open = rng.pick(['[', '{"a":']);
      const close = open === '[' ? ']' : '}';
      return [`JSON nested ${depth} deep`, Buffer.from(`${open.repeat(depth)}1${close.repeat(depth)}`)];
    }
    case 6:
      return [
        'JSON number out of range',
        Buffer.from(rng.pick(['{"a":1e400}', '[-1e999]', '{"a":[1,2,1e309]}', '1e1000'])),
      ];
    case 7:
      return ['JSON number too precise', Buffer.from(`{"a":${rng.string('0123456789', 30, 400)}}`)];
    case 8:
      return ['top-level JSON primitive', Buffer.from(rng.pick(['"text"', '42', 'null', 'true', '""', '[]', '{}']))];
    case 9:
      return [
        'invalid UTF-8 in JSON',
        Buffer.concat([Buffer.from('{"a":"'), rng.bytes(1, 20, 0x80, 0xff), Buffer.from('"}')]),
      ];
    case 10:
      return ['JSON after a byte-order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(valid)])];
    default:
      return ['empty JSON body', Buffer.alloc(0)];
  }
}

const WRONG_TYPES = [
  'text/plain',
  'text/plain; charset=utf-8',
  'application/x-www-form-urlencoded',
  'multipart/form-data',
  'multipart/form-data; boundary=xyz',
  'application/octet-stream',
  'application/xml',
  'application/vnd.api+json',
  'APPLICATION/JSON',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'application/json; charset=nonsense',
  'application/json;;;',
  'application/json; charset="',
  'json',
  '*/*',
  '',
  ';',
] as const;

function bodyCase(rng: Rng): FuzzCase {
  const key = validKey(rng);
  const method = rng.pick(['POST', 'POST', 'PATCH', 'PUT', 'DELETE']);
  const roll = rng.int(0, 19);
  if (roll < 9) {
    const [label, body] = brokenJson(rng);
    return {
      label,
      malformed: true,
      expect: 'any',
      pooled: { method, path: '/fuzz', headers: { 'idempotency-key': key, 'content-type': 'application/json' }, body },
    };
  }
  if (roll < 14) {
    const type = rng.pick(WRONG_TYPES);
    const body = rng.pick([
      () => jsonBody(rng),
      () => rng.bytes(0, 300),
      () => Buffer.from(rng.string('%=&+;azAZ09 \u00e9', 0, 200)),
      () =>
        Buffer.from(
          `--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\n${rng.string(QUOTABLE, 0, 40)}\r\n--xyz--`,
        ),
    ])();
    const headers: Record<string, string> = { 'idempotency-key': key };
    if (type !== '' || rng.chance(0.5)) headers['content-type'] = type;
    return {
      label: `content type ${JSON.stringify(type)}`,
      malformed: true,
      expect: 'any',
      pooled: { method, path: '/fuzz', headers, body },
    };
  }
  if (roll < 16) {
    const [label, body] = brokenJson(rng);
    const pieces: Buffer[] = [];
    for (let at = 0; at < body.length; at += 97)
      pieces.push(
        Buffer.from(`${(Math.min(97, body.length - at)).toString(16)}\r\n`),
        body.subarray(at, at + 97),
        Buffer.from('\r\n'),
      );
    const broken = rng.chance(0.5);
    const tail = broken
      ? rng.pick(['zz\r\n', '5\r\nab\r\n0\r\n\r\n', '-1\r\n', '\r\n\r\n', 'ffffffffffffffffff\r\n'])
      : '0\r\n\r\n';
    const head = `POST /fuzz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${AUTH}Idempotency-Key: ${key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
    return {
      label: `${broken ? 'broken ' : ''}chunked ${label}`,
      malformed: true,
      expect: 'any',
      raw: Buffer.concat([Buffer.from(head), ...pieces, Buffer.from(tail)]),
      mayDrop: broken,
    };
  }
  if (roll < 17) {
    const body = jsonBody(rng);
    const sent = body.subarray(0, rng.int(0, body.length - 1));
    const head = `POST /fuzz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${AUTH}Idempotency-Key: ${key}\r\nContent-Type: ${rng.pick(['application/json', 'text/plain'])}\r\nContent-Length: ${body.length}\r\n\r\n`;
    return {
      label: 'client gone mid-body',
      malformed: true,
      expect: 'any',
      raw: Buffer.concat([Buffer.from(head), sent]),
      mayDrop: true,
    };
  }
  // The same key with another body of a type no JSON parser reads: 422 (or 409 while the first
  // is being stored), never the first request's answer.
  const type = rng.pick([
    'text/plain',
    'application/octet-stream',
    'application/x-www-form-urlencoded',
    'application/xml',
    '',
  ]);
  const headers: Record<string, string> = { 'idempotency-key': key, ...(type === '' ? {} : { 'content-type': type }) };
  const first = Buffer.from(`a=${rng.hex(12)}`);
  const second = Buffer.from(`a=${rng.hex(12)}`);
  return {
    label: `same key, other ${type || 'untyped'} body`,
    malformed: false,
    expect: 'stored',
    pooled: { method: 'POST', path: '/fuzz', headers, body: first },
    followUp: {
      label: `same key, other ${type || 'untyped'} body (second)`,
      malformed: false,
      expect: 'refused',
      pooled: { method: 'POST', path: '/fuzz', headers, body: second },
    },
  };
}

function generate(rng: Rng, malformedWanted: number): FuzzCase[] {
  const cases: FuzzCase[] = [];
  let malformed = 0;
  while (malformed < malformedWanted) {
    const next = rng.chance(0.55) ? keyCase(rng) : bodyCase(rng);
    if (next.malformed) malformed += 1;
    cases.push(next);
  }
  return cases;
}

function preview(c: FuzzCase): string {
  const bytes =
    c.raw ?? Buffer.from(`${c.pooled?.method} ${JSON.stringify(c.pooled?.headers)} ${String(c.pooled?.body ?? '')}`);
  const text = JSON.stringify(bytes.subarray(0, 300).toString('latin1'));
  return bytes.length > 300 ? `${text}... (${bytes.length} bytes)` : text;
}

interface FuzzServer {
  child: ChildProcess;
  ports: Record<FuzzAdapter, number>;
  stderr: () => string;
}

async function startFuzzServer(): Promise<FuzzServer> {
  const child = spawn(process.execPath, [...process.execArgv, serverModule], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const first = await Promise.race([lines.next(), exited.then(() => null)]);
  if (first === null || first.done || !first.value.startsWith('listening ')) {
    throw new Error(`the fuzz server did not start: ${stderr}`);
  }
  return { child, ports: JSON.parse(first.value.slice('listening '.length)), stderr: () => stderr };
}

async function countRecords(store: Store): Promise<{ total: number; inProgress: number }> {
  let total = 0;
  let inProgress = 0;
  let cursor: string | undefined;
  do {
    const page = await store.list({ cursor, limit: 1000 });
    total += page.records.length;
    inProgress += page.records.filter((r) => r.state === 'in_progress').length;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return { total, inProgress };
}

describe(`HTTP fuzz (seed ${SEED}; rerun with IDEM_FUZZ_SEED=${SEED})`, () => {
  let server: FuzzServer;
  const stores = new Map<FuzzAdapter, Store>();
  before(async () => {
    for (const adapter of FUZZ_ADAPTERS) await dropStore(fuzzNamespace(adapter));
    server = await startFuzzServer();
    for (const adapter of FUZZ_ADAPTERS) stores.set(adapter, await createStore(fuzzNamespace(adapter)));
  });
  after(async () => {
    server?.child.kill('SIGTERM');
    for (const store of stores.values()) await store.close();
    for (const adapter of FUZZ_ADAPTERS) await dropStore(fuzzNamespace(adapter));
  });

  FUZZ_ADAPTERS.forEach((adapter, index) => {
    it(`answers ${MALFORMED_PER_ADAPTER} malformed requests to ${adapter} with 2xx or 4xx only, stays up, and stores nothing it refused`, {
      timeout: 120_000,
    }, async (t) => {
      t.diagnostic(`seed ${SEED}`);
      const rng = new Rng(SEED + index);
      const cases = generate(rng, MALFORMED_PER_ADAPTER);
      const port = server.ports[adapter];
      const store = stores.get(adapter) as Store;
      const pool = new HttpPool(IN_FLIGHT);
      const failures: string[] = [];
      const statuses = new Map<number, number>();
      let recorded = 0;
      let dropped = 0;
      let problems = 0;

      const fail = (c: FuzzCase, i: number, why: string) => {
        if (failures.length < 15) failures.push(`#${i} ${c.label}: ${why}\n      request ${preview(c)}`);
      };
      const sendCase = async (c: FuzzCase): Promise<Answer | undefined> => {
        try {
          if (c.raw !== undefined) {
            const response = await rawRequest(port, c.raw, c.label === 'client gone mid-body');
            return { status: response.status, headers: response.headers, text: response.body.toString('utf8') };
          }
          const { path, ...request } = c.pooled as PooledRequest & { path: string };
          return await pool.send(`http://127.0.0.1:${port}${path}`, {
            ...request,
            headers: { ...CALLER, ...request.headers },
          });
        } catch (error) {
          if (c.mayDrop) return undefined;
          throw error;
        }
      };
      const check = (c: FuzzCase, i: number, answer: Answer | undefined) => {
        if (answer === undefined) {
          dropped += 1;
          return;
        }
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        const ok = answer.status >= 200 && answer.status < 300;
        const refused = answer.status >= 400 && answer.status < 500;
        const isRecorded = ok && answer.headers['x-protected'] === '1';
        if (isRecorded) recorded += 1;
        if (!ok && !refused) return fail(c, i, `answered ${answer.status}: ${answer.text.slice(0, 300)}`);
        if (/problem\+json/.test(String(answer.headers['content-type']))) {
          problems += 1;
          if (!refused) return fail(c, i, `a problem answer with status ${answer.status}`);
        }
        if (c.expect === 'refused' && !refused) return fail(c, i, `expected a 4xx, got ${answer.status}`);
        if (c.expect === 'unprotected' && isRecorded) return fail(c, i, 'recorded a request that carried no key');
        if (c.expect === 'stored' && !isRecorded) {
          return fail(c, i, `expected a recorded 201, got ${answer.status}: ${answer.text.slice(0, 300)}`);
        }
      };

      const startedAt = Date.now();
      for (let from = 0; from < cases.length; from += BATCH) {
        const batch = cases.slice(from, from + BATCH);
        await mapLimit(batch, IN_FLIGHT, async (c, offset) => {
          const i = from + offset;
          try {
            check(c, i, await sendCase(c));
            if (c.followUp !== undefined) check(c.followUp, i, await sendCase(c.followUp));
          } catch (error) {
            fail(c, i, `no answer: ${error instanceof Error ? error.message : String(error)}`);
          }
        });

        assert.equal(server.child.exitCode, null, `the server process exited: ${server.stderr()}`);
        assert.equal(server.child.signalCode, null, `the server process was killed: ${server.stderr()}`);
        // Every recorded run leaves exactly one record and nothing else does: a refused request
        // that left a record (or a claim) behind would break the count.
        let records = await countRecords(store);
        for (let waited = 0; records.total !== recorded && waited < 3000; waited += 50) {
          await sleep(50);
          records = await countRecords(store);
        }
        assert.deepEqual(failures, [], `seed ${SEED}: ${failures.length} failing cases\n${failures.join('\n')}`);
        assert.equal(records.total, recorded, `seed ${SEED}: ${records.total} records for ${recorded} recorded runs`);
        assert.equal(records.inProgress, 0, `seed ${SEED}: claims left in progress`);
      }

      const stats = (await pool.send(`http://127.0.0.1:${port}/__stats`, { method: 'GET' })).text;
      const counts = JSON.parse(stats) as Record<HttpEvent['type'] | 'errors', number>;
      assert.equal(counts.run, recorded, `every claim is a recorded run: ${stats}`);
      assert.equal(counts.stored, recorded, `every recorded run was stored: ${stats}`);
      assert.equal(counts.released, 0, `no claim was taken and given back: ${stats}`);
      assert.equal(
        problems,
        counts.refused + counts.mismatch + counts.in_progress,
        `every Idem refusal was seen: ${stats}`,
      );
      assert.equal(counts.store_error, 0, stats);
      assert.equal(counts.errors, 0, stats);
      assert.ok(server.stderr() === '', `the server logged errors:\n${server.stderr().slice(0, 3000)}`);
      pool.close();
      const tally = [...statuses.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s}x${n}`);
      t.diagnostic(
        `${cases.length} requests (${MALFORMED_PER_ADAPTER} malformed) in ${Date.now() - startedAt} ms: ${tally.join(' ')}, ${dropped} dropped by the client, ${recorded} recorded; idem ${stats}`,
      );
    });
  });
});
