/**
 * Moved to `src/store-kit/errors.ts`: this file only forwards `storeClosed` for the memory store's
 * import until it imports from the kit. Do not add to it.
 */
export { storeClosed } from '../../store-kit/errors.js';
