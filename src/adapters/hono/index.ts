export { type HonoIdempotencyOptions, idempotency } from './hono-idempotency.js';
