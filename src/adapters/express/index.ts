export { type ExpressIdempotencyOptions, type ExpressRequestLike, idempotency } from './express-idempotency.js';
