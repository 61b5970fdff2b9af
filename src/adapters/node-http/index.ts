export { type BufferedRequest, type NodeIdempotencyOptions, withIdempotency } from './node-idempotency.js';
