import 'reflect-metadata';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import {
  Body,
  Controller,
  Delete,
  Get,
  Header,
  HttpCode,
  HttpException,
  type INestApplication,
  Module,
  type ModuleMetadata,
  Patch,
  Post,
  Put,
  Res,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  IdempotencyInterceptor,
  IdempotencyModule,
  Idempotent,
  type NestIdempotencyOptions,
} from '../../src/adapters/nest/index.js';
import type { HttpIdempotencyOptions } from '../../src/http/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import {
  ConformanceApp,
  type RunningServer,
  runHttpConformance,
  send,
  writeNeutralResponse,
} from '../../src/testing/index.js';
import { createStore as postgresStore } from '../stores/postgres.factory.js';
import { CALLER } from './serve.js';

const routeDecorators = { GET: Get, POST: Post, PUT: Put, PATCH: Patch, DELETE: Delete } as const;

/**
 * A controller with one `@Idempotent()` handler per route of `ConformanceApp.routes`, each with
 * a fixed path, so Express reports a distinct route pattern per path. Built from the list rather
 * than written out, so that it serves whatever routes the suite adds.
 */
function conformanceController(app: ConformanceApp): new () => object {
  class ConformanceController {}
  const prototype = ConformanceController.prototype;
  for (const route of ConformanceApp.routes) {
    const name = `${route.method.toLowerCase()}${route.path.replace(/\W/g, '_')}`;
    const handler = async (body: unknown, res: ServerResponse) =>
      writeNeutralResponse(res, await app.handle(route.op, body));
    Object.defineProperty(prototype, name, { value: handler, writable: true, configurable: true });
    const descriptor = Object.getOwnPropertyDescriptor(prototype, name) as PropertyDescriptor;
    routeDecorators[route.method](route.path)(prototype, name, descriptor);
    Idempotent()(prototype, name, descriptor);
    Body()(prototype, name, 0);
    Res()(prototype, name, 1);
  }
  Controller()(ConformanceController);
  return ConformanceController;
}

/** Creates the Nest app of `metadata` on Express and listens on a free loopback port. */
async function serve(
  metadata: ModuleMetadata,
  setup: (app: INestApplication) => void = () => {},
): Promise<RunningServer> {
  class AppModule {}
  Module(metadata)(AppModule);
  const app = await NestFactory.create(AppModule, { logger: false });
  setup(app);
  await app.listen(0, '127.0.0.1');
  const server = app.getHttpServer() as Server;
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await app.close();
    },
  };
}

async function start(options: HttpIdempotencyOptions, app: ConformanceApp): Promise<RunningServer> {
  return serve({ imports: [IdempotencyModule.forRoot(options)], controllers: [conformanceController(app)] });
}

runHttpConformance({ name: 'nest on memory', start });
runHttpConformance({ name: 'nest on postgres', start, createStore: () => postgresStore('http_conformance') });

const post = (url: string, key: string | undefined, body: unknown = { amount: 500 }) =>
  send(url, { body, headers: { ...CALLER, ...(key === undefined ? {} : { 'idempotency-key': key }) } });

/** Counts the runs of each handler of the test controllers below. */
const runs = new Map<string, number>();
const ran = (name: string) => {
  const n = (runs.get(name) ?? 0) + 1;
  runs.set(name, n);
  return n;
};

@Controller('charges')
class ChargesController {
  @Post()
  @Idempotent()
  @HttpCode(201)
  @Header('x-api', 'v1')
  create(body: { amount: number }) {
    return { id: `ch_${ran('create')}`, amount: body.amount };
  }

  @Post('strict')
  @Idempotent({ required: true })
  strict() {
    return { run: ran('strict') };
  }

  @Post('plain')
  plain() {
    return { run: ran('plain') };
  }

  @Post('webhook')
  @Idempotent(false)
  webhook() {
    return { run: ran('webhook') };
  }

  @Post('declined')
  @Idempotent({ policy: 'stripe' })
  declined() {
    ran('declined');
    throw new HttpException({ code: 'card_declined' }, 402);
  }

  @Post('void')
  @Idempotent()
  @HttpCode(204)
  nothing() {
    ran('void');
  }

  @Post('passthrough')
  @Idempotent()
  passthrough(res: ServerResponse) {
    res.setHeader('location', '/charges/passthrough');
    return { run: ran('passthrough') };
  }

  @Post('notes')
  @Idempotent()
  note() {
    return { run: ran('note') };
  }

  @Post('bug')
  @Idempotent({ policy: 'stripe' })
  bug() {
    ran('bug');
    throw new Error('bug');
  }
}

// Parameter decorators applied as calls: Biome parses `@Body()` on a parameter only with
// `unsafeParameterDecoratorsEnabled`. The metadata is the same.
Body()(ChargesController.prototype, 'create', 0);
Res({ passthrough: true })(ChargesController.prototype, 'passthrough', 0);

@Controller('ledger')
@Idempotent({ policy: 'stripe' })
class LedgerController {
  @Post('entries')
  entries() {
    ran('entries');
    throw new HttpException('ledger down', 503);
  }

  @Post('transfers')
  @Idempotent({ policy: 'default' })
  transfers() {
    ran('transfers');
    throw new HttpException('ledger down', 503);
  }
}

const STORE = Symbol('store');

describe('nest adapter', () => {
  const withApp = async (
    options: Omit<NestIdempotencyOptions, 'store'>,
    body: (url: string) => Promise<void>,
    how: 'module' | 'global' = 'module',
  ) => {
    runs.clear();
    const store = new MemoryStore();
    const controllers = [ChargesController, LedgerController];
    const server =
      how === 'module'
        ? await serve({ imports: [IdempotencyModule.forRoot({ ...options, store })], controllers })
        : await serve({ controllers }, (app) =>
            app.useGlobalInterceptors(new IdempotencyInterceptor({ ...options, store })),
          );
    try {
      await body(server.url);
    } finally {
      await server.close();
      await store.close();
    }
  };

  it('replays a returned value with its @HttpCode, JSON body and headers, without running the handler', async () => {
    await withApp({ replayHeaders: ['x-api'] }, async (url) => {
      const k = randomUUID();
      const first = await post(`${url}/charges`, k);
      assert.equal(first.status, 201);
      assert.deepEqual(first.json, { id: 'ch_1', amount: 500 });
      const again = await post(`${url}/charges`, k);
      assert.equal(again.status, 201);
      assert.equal(again.text, first.text);
      assert.match(String(again.headers['content-type']), /^application\/json/);
      assert.equal(again.headers['x-api'], 'v1');
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(runs.get('create'), 1);
    });
  });

  it('replays a 204 without a body, and the value of a @Res({ passthrough: true }) handler', async () => {
    await withApp({}, async (url) => {
      const k = randomUUID();
      assert.equal((await post(`${url}/charges/void`, k)).status, 204);
      const empty = await post(`${url}/charges/void`, k);
      assert.equal(empty.status, 204);
      assert.equal(empty.text, '');
      assert.equal(empty.headers['idempotent-replayed'], 'true');
      assert.equal(runs.get('void'), 1);
      const other = randomUUID(); // a key per route: the same key on another route is a 422
      const first = await post(`${url}/charges/passthrough`, other);
      const again = await post(`${url}/charges/passthrough`, other);
      assert.equal(again.status, 201);
      assert.equal(again.text, first.text);
      assert.equal(again.headers.location, '/charges/passthrough');
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(runs.get('passthrough'), 1);
    });
  });

  it('fingerprints a body no Nest parser reads, such as text/plain, by its bytes', async () => {
    await withApp({}, async (url) => {
      const k = randomUUID();
      const note = (text: string) =>
        send(`${url}/charges/notes`, {
          body: text,
          headers: { ...CALLER, 'idempotency-key': k, 'content-type': 'text/plain' },
        });
      assert.equal((await note('first note')).status, 201);
      assert.equal((await note('first note')).headers['idempotent-replayed'], 'true');
      assert.equal((await note('other note')).status, 422);
      assert.equal(runs.get('note'), 1);
    });
  });

  it('protects only the routes marked @Idempotent() by default', async () => {
    await withApp({}, async (url) => {
      const k = randomUUID();
      await post(`${url}/charges/plain`, k);
      const again = await post(`${url}/charges/plain`, k);
      assert.equal(again.headers['idempotent-replayed'], undefined);
      assert.equal(runs.get('plain'), 2);
    });
  });

  it('applies the options of each route: a key is required on one route and optional on another', async () => {
    await withApp({}, async (url) => {
      const strict = await post(`${url}/charges/strict`, undefined);
      assert.equal(strict.status, 400);
      assert.equal((strict.json as { code: string }).code, 'KEY_MISSING');
      assert.equal(runs.get('strict'), undefined);
      assert.equal((await post(`${url}/charges`, undefined)).status, 201);
    });
  });

  it("protects every route with protect: 'all', except those marked @Idempotent(false)", async () => {
    await withApp({ protect: 'all' }, async (url) => {
      const k = randomUUID();
      await post(`${url}/charges/plain`, k);
      const plain = await post(`${url}/charges/plain`, k);
      assert.equal(plain.headers['idempotent-replayed'], 'true');
      assert.equal(runs.get('plain'), 1);
      await post(`${url}/charges/webhook`, k);
      const webhook = await post(`${url}/charges/webhook`, k);
      assert.equal(webhook.headers['idempotent-replayed'], undefined);
      assert.equal(runs.get('webhook'), 2);
    });
  });

  it('takes the options of the controller, and those of the handler over them', async () => {
    await withApp({}, async (url) => {
      const k = randomUUID();
      assert.equal((await post(`${url}/ledger/entries`, k)).status, 503);
      const entries = await post(`${url}/ledger/entries`, k);
      assert.equal(entries.status, 503);
      assert.equal(entries.headers['idempotent-replayed'], 'true', 'the controller stores every outcome');
      assert.equal(runs.get('entries'), 1);
      const other = randomUUID();
      await post(`${url}/ledger/transfers`, other);
      const transfers = await post(`${url}/ledger/transfers`, other);
      assert.equal(transfers.headers['idempotent-replayed'], undefined, 'the handler does not store a 503');
      assert.equal(runs.get('transfers'), 2);
    });
  });

  it('stores the answer of an HttpException, but releases the key of any other thrown error', async () => {
    await withApp({}, async (url) => {
      const k = randomUUID();
      assert.equal((await post(`${url}/charges/declined`, k)).status, 402);
      const declined = await post(`${url}/charges/declined`, k);
      assert.equal(declined.status, 402);
      assert.deepEqual(declined.json, { code: 'card_declined' });
      assert.equal(declined.headers['idempotent-replayed'], 'true');
      assert.equal(runs.get('declined'), 1);
      const other = randomUUID();
      assert.equal((await post(`${url}/charges/bug`, other)).status, 500);
      assert.equal((await post(`${url}/charges/bug`, other)).status, 500);
      assert.equal(runs.get('bug'), 2, 'a thrown error is not stored, even with the stripe preset');
    });
  });

  it('works as a plain global interceptor, without the module', async () => {
    await withApp(
      {},
      async (url) => {
        const k = randomUUID();
        await post(`${url}/charges`, k);
        const again = await post(`${url}/charges`, k);
        assert.equal(again.headers['idempotent-replayed'], 'true');
        assert.equal(runs.get('create'), 1);
      },
      'global',
    );
  });

  it('takes its options from a factory with forRootAsync', async () => {
    runs.clear();
    const store = new MemoryStore();
    @Module({ providers: [{ provide: STORE, useValue: store }], exports: [STORE] })
    class StoreModule {}
    const server = await serve({
      imports: [
        IdempotencyModule.forRootAsync({
          imports: [StoreModule],
          inject: [STORE],
          useFactory: (injected: MemoryStore) => ({ store: injected, required: true }),
        }),
      ],
      controllers: [ChargesController],
    });
    try {
      assert.equal((await post(`${server.url}/charges`, undefined)).status, 400, 'the factory options apply');
      const k = randomUUID();
      await post(`${server.url}/charges`, k);
      assert.equal((await post(`${server.url}/charges`, k)).headers['idempotent-replayed'], 'true');
    } finally {
      await server.close();
      await store.close();
    }
  });
});
