export { type BufferedRequest, type NodeIdempotencyOptions, withIdempotency } from './node-idempotency.js';
export { readBody, recordServerResponse, sendResponse } from './server-response.js';
