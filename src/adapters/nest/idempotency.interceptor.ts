import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type CallHandler,
  type ExecutionContext,
  HttpException,
  Inject,
  Injectable,
  type NestInterceptor,
  StreamableFile,
} from '@nestjs/common';
import { catchError, defer, type Observable, of } from 'rxjs';
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import { HttpIdempotency, type HttpIdempotencyOptions } from '../../http/http-idempotency.js';
import type { HttpRequestInfo, HttpResponseData } from '../../http/http-types.js';
import { problemResponse } from '../../http/problem.js';
import {
  declaredLength,
  hasBody,
  nodeHeader,
  parsedBody,
  readBody,
  recordServerResponse,
} from '../node-http/server-response.js';
import { IDEMPOTENT_METADATA, type IdempotentOptions } from './idempotent.decorator.js';

/** The injection token of the options `IdempotencyInterceptor` takes. */
export const IDEMPOTENCY_OPTIONS = Symbol.for('idem:nest:options');

export interface NestIdempotencyOptions extends HttpIdempotencyOptions {
  /**
   * Which routes are protected. `decorated`: only handlers and controllers marked
   * `@Idempotent()`. `all`: every route, except those marked `@Idempotent(false)`; methods
   * still decide (POST and PATCH by default). Default `decorated`.
   */
  protect?: 'decorated' | 'all';
}

/** The parts of a request on `@nestjs/platform-express` the interceptor reads. */
interface NestExpressRequest extends IncomingMessage {
  body?: unknown;
  path?: string;
  baseUrl?: string;
  route?: { path?: unknown };
}

type Handler = ExecutionContext['getHandler'] extends () => infer F ? F : never;

/**
 * NestJS interceptor (on `@nestjs/platform-express`) for the `Idempotency-Key` header. The first
 * request runs the handler and its response is recorded as it is written; a repeated key gets
 * the stored response and the handler does not run.
 *
 * Register it with `IdempotencyModule.forRoot(options)`, or yourself with
 * `app.useGlobalInterceptors(new IdempotencyInterceptor(options))` or `@UseInterceptors()`.
 * Register it before interceptors that transform response values (`map`), so that they never
 * see a replay. A handler that throws releases the key, so a retry runs again; an
 * `HttpException` is an answer like any other, stored under the cache policy.
 *
 * @example
 * ```ts
 * const app = await NestFactory.create(AppModule);
 * app.useGlobalInterceptors(new IdempotencyInterceptor({ store: new SqliteStore() }));
 *
 * // in a controller
 * @Post('charges')
 * @Idempotent()
 * create(@Body() body: CreateCharge) { return this.charges.create(body); }
 * ```
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  readonly #options: NestIdempotencyOptions;
  readonly #shared: HttpIdempotency;
  /** The HTTP layer of each handler, `null` when it is not protected; built on its first request. */
  readonly #byHandler = new WeakMap<Handler, HttpIdempotency | null>();

  constructor(@Inject(IDEMPOTENCY_OPTIONS) options: NestIdempotencyOptions) {
    this.#options = options;
    this.#shared = new HttpIdempotency(options);
  }

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    if (context.getType() !== 'http') return next.handle();
    const http = this.#httpFor(context);
    if (http === null) return next.handle();
    const req = context.switchToHttp().getRequest<NestExpressRequest>();
    const res = context.switchToHttp().getResponse<ServerResponse>();
    const header = nodeHeader(req);
    if (!http.applies(req.method ?? 'GET', header)) return next.handle();

    let bodyBytes = declaredLength(req);
    if (req.body === undefined && hasBody(req) && !req.readableEnded) {
      // The app runs without Nest's body parser: read the body here so it can be fingerprinted,
      // and leave it on req.body (parsed when it is JSON) for @Body().
      const body = await readBody(req, http.maxBodyBytes);
      if (body === undefined) return of(reply(res, tooLarge(http.maxBodyBytes)));
      bodyBytes = body.length;
      req.body = parsedBody(req, body);
    }
    const info: HttpRequestInfo = {
      method: req.method ?? 'POST',
      route: routeOf(req),
      header,
      body: req.body,
      bodyBytes,
    };
    const decision = await http.begin(info);
    if (decision.action === 'respond') return of(reply(res, decision.response));
    if (decision.action === 'pass') return next.handle();

    const { recording } = decision;
    recordServerResponse(res, recording);
    return next.handle().pipe(
      catchError((error: unknown) =>
        defer(async () => {
          // A thrown error may have left the work half done: release before the exception
          // filter answers, so that a retry runs again whatever the policy. An HttpException
          // is a deliberate answer, recorded like a returned value.
          if (!(error instanceof HttpException)) await recording.abort();
          throw error;
        }),
      ),
    );
  }

  #httpFor(context: ExecutionContext): HttpIdempotency | null {
    const handler = context.getHandler();
    const known = this.#byHandler.get(handler);
    if (known !== undefined) return known;
    const onHandler = metadataOf(handler);
    const onClass = metadataOf(context.getClass());
    let http: HttpIdempotency | null;
    if (onHandler === false || (onHandler === undefined && onClass === false)) http = null;
    else if (onHandler === undefined && onClass === undefined) http = this.#options.protect === 'all' ? this.#shared : null;
    else {
      const own = { ...(onClass || {}), ...onHandler };
      http = Object.keys(own).length === 0 ? this.#shared : new HttpIdempotency({ ...this.#options, ...own });
    }
    this.#byHandler.set(handler, http);
    return http;
  }
}

function metadataOf(target: object): IdempotentOptions | false | undefined {
  return Reflect.getMetadata(IDEMPOTENT_METADATA, target) as IdempotentOptions | false | undefined;
}

/** The Express route pattern, with the router's mount path (global prefix, versions). */
function routeOf(req: NestExpressRequest): string {
  const pattern = req.route?.path;
  if (typeof pattern === 'string') return `${req.baseUrl ?? ''}${pattern}`;
  return `${req.baseUrl ?? ''}${req.path ?? (req.url ?? '/').split('?')[0]}`;
}

/**
 * Answers in Nest's own way instead of calling the handler: status and headers on the
 * response, the body bytes as a StreamableFile, which the platform sends untouched.
 */
function reply(res: ServerResponse, response: HttpResponseData): StreamableFile | undefined {
  res.statusCode = response.status;
  const headers = new Map<string, string[]>();
  for (const [name, value] of response.headers) headers.set(name, [...(headers.get(name) ?? []), value]);
  for (const [name, values] of headers) res.setHeader(name, values.length === 1 ? (values[0] as string) : values);
  return response.body.length === 0 ? undefined : new StreamableFile(response.body);
}

function tooLarge(limit: number): HttpResponseData {
  return problemResponse(
    new IdempotencyError(
      ErrorCode.REQUEST_TOO_LARGE,
      `[idem] the request body is over the limit of ${limit} bytes; send a smaller body.`,
    ),
  );
}
