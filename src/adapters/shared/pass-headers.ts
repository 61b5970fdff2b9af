import type { HttpDecision } from '../../http/http-idempotency.js';

/**
 * Sets the headers a `pass` decision asks for (`Idempotent-Unprotected: true` on a request run
 * unprotected while the store is down) through the framework's own `set`; none for a plain pass.
 */
export function setPassHeaders(
  decision: Extract<HttpDecision, { action: 'pass' }>,
  set: (name: string, value: string) => unknown,
): void {
  for (const [name, value] of decision.headers ?? []) set(name, value);
}
