export {
  type FastifyIdempotencyOptions,
  type FastifyRouteIdempotency,
  idempotency,
} from './fastify-idempotency.js';
