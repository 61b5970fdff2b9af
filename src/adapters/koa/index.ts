export { idempotency, type KoaIdempotencyOptions } from './koa-idempotency.js';
