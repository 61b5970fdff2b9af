export { type LambdaContextLike, type LambdaIdempotencyOptions, makeIdempotent } from './make-idempotent.js';
