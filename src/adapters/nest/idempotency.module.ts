import { type DynamicModule, type FactoryProvider, Module, type ModuleMetadata } from '@nestjs/common';
import { IdempotencyInterceptor, type NestIdempotencyOptions } from './idempotency.interceptor.js';

/** The injection token of the module's options (`NestIdempotencyOptions`). */
export const IDEMPOTENCY_OPTIONS = Symbol.for('idem:nest:options');

/**
 * `APP_INTERCEPTOR` of `@nestjs/core`, by value: the adapter depends on `@nestjs/common` only,
 * and Nest documents the token as this string.
 */
const APP_INTERCEPTOR = 'APP_INTERCEPTOR';

/** Options computed from other providers, such as a store built from a config service. */
export interface IdempotencyModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /** Builds the options; its arguments are the providers named in `inject`. */
  useFactory: FactoryProvider<NestIdempotencyOptions | Promise<NestIdempotencyOptions>>['useFactory'];
  /** Providers handed to `useFactory`, in order. Default: none. */
  inject?: FactoryProvider['inject'];
}

/**
 * Registers `IdempotencyInterceptor` app-wide. With the default `protect: 'decorated'`, only
 * routes marked `@Idempotent()` are protected; the module is global, so the interceptor can also
 * be injected anywhere.
 *
 * @example
 * ```ts
 * @Module({
 *   imports: [IdempotencyModule.forRoot({ store: new PostgresStore({ url }) })],
 *   controllers: [ChargesController],
 * })
 * export class AppModule {}
 * ```
 */
@Module({})
// biome-ignore lint/complexity/noStaticOnlyClass: a Nest dynamic module is a class with static factories.
export class IdempotencyModule {
  static forRoot(options: NestIdempotencyOptions): DynamicModule {
    return dynamicModule([{ provide: IDEMPOTENCY_OPTIONS, useValue: options }]);
  }

  static forRootAsync(options: IdempotencyModuleAsyncOptions): DynamicModule {
    return dynamicModule(
      [{ provide: IDEMPOTENCY_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] }],
      options.imports,
    );
  }
}

function dynamicModule(providers: DynamicModule['providers'], imports: ModuleMetadata['imports'] = []): DynamicModule {
  return {
    module: IdempotencyModule,
    global: true,
    imports,
    providers: [
      ...(providers ?? []),
      // Built by a factory rather than by type: a class's constructor types are only known to
      // Nest when the compiler emits decorator metadata, which esbuild and tsx do not.
      {
        provide: IdempotencyInterceptor,
        useFactory: (options: NestIdempotencyOptions) => new IdempotencyInterceptor(options),
        inject: [IDEMPOTENCY_OPTIONS],
      },
      { provide: APP_INTERCEPTOR, useExisting: IdempotencyInterceptor },
    ],
    exports: [IDEMPOTENCY_OPTIONS, IdempotencyInterceptor],
  };
}
