export { IdempotencyInterceptor, type NestIdempotencyOptions } from './idempotency.interceptor.js';
export { IDEMPOTENCY_OPTIONS, IdempotencyModule, type IdempotencyModuleAsyncOptions } from './idempotency.module.js';
export { IDEMPOTENT_METADATA, Idempotent, type IdempotentRouteOptions } from './idempotent.decorator.js';
