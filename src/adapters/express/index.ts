export {
  type ExpressIdempotencyMiddleware,
  type ExpressIdempotencyOptions,
  type ExpressRequestLike,
  idempotency,
} from './express-idempotency.js';
