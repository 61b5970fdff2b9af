/**
 * The condition and update expressions of the DynamoDB store, one set per operation. `#field`
 * names a record field (see `ATTRIBUTE`; `namesOf` maps them), `:name` a value the call binds.
 * Every write is one conditional request, so each is atomic on the item; a refused condition
 * comes back as `ConditionalCheckFailedException`, which is an answer, not a failure.
 */

/** The value placeholders of the record states. */
export const STATES = { ':inProgress': { S: 'in_progress' }, ':completed': { S: 'completed' } } as const;

export const EXPRESSIONS = {
  /*
   * claimFresh (PutItem of a fresh record): wins where there is no record, or only an expired one.
   * :now now ms. Refused otherwise; the refusal carries the current item on DynamoDB
   * (ReturnValuesOnConditionCheckFailure ALL_OLD), so no second read is needed there.
   */
  claimFresh: { condition: 'attribute_not_exists(#key) OR #expiresAtMs <= :now' },

  /*
   * takeOver (UpdateItem): replaces the holder of an in-progress record whose lease ended, with
   * the same fingerprint, exactly as the claim saw it (its token), so two callers that saw the
   * same ended lease cannot both take it over. `createdAtMs` is kept, `attempts` goes up by one.
   * :seen the token the claim saw, :now now ms, :fp fingerprint, :token the new token,
   * :lease new lease end ms, :exp new retention end ms, :ttl the same in seconds, :one 1.
   * Returns the record as written (ReturnValues ALL_NEW); refused when it changed meanwhile.
   */
  takeOver: {
    condition:
      '#token = :seen AND #state = :inProgress AND #leaseExpiresAtMs <= :now AND #fingerprint = :fp AND #expiresAtMs > :now',
    update:
      'SET #token = :token, #leaseExpiresAtMs = :lease, #expiresAtMs = :exp, #expiresAtSeconds = :ttl, #updatedAtMs = :now, #attempts = #attempts + :one',
  },

  /*
   * complete (UpdateItem): stores the result and marks the record completed, if the token holds.
   * :token, :result bytes, :now now ms, :exp new retention end ms, :ttl the same in seconds.
   * Refused when the record is gone, completed, or held by another token.
   */
  complete: {
    condition: '#token = :token AND #state = :inProgress',
    update:
      'SET #state = :completed, #result = :result, #expiresAtMs = :exp, #expiresAtSeconds = :ttl, #updatedAtMs = :now',
  },

  /*
   * release (DeleteItem): deletes an in-progress record, if the token holds. :token.
   */
  release: { condition: '#token = :token AND #state = :inProgress' },

  /*
   * extendRaising (UpdateItem): moves the lease end and raises the retention end to :exp, if the
   * token holds and the record's retention ends no later than :exp (the usual case: the engine
   * asks for now + retention). An update expression has no max(), so the other case is a second
   * request, extendKeeping. :token, :lease new lease end ms, :exp, :ttl, :now.
   */
  extendRaising: {
    condition: '#token = :token AND #state = :inProgress AND #expiresAtMs <= :exp',
    update: 'SET #leaseExpiresAtMs = :lease, #expiresAtMs = :exp, #expiresAtSeconds = :ttl, #updatedAtMs = :now',
  },

  /*
   * extendKeeping (UpdateItem): moves the lease end and keeps the later retention end the record
   * has, if the token holds. :token, :lease, :exp (only compared), :now. Refused when the token
   * no longer holds: the extension is then refused as a whole.
   */
  extendKeeping: {
    condition: '#token = :token AND #state = :inProgress AND #expiresAtMs > :exp',
    update: 'SET #leaseExpiresAtMs = :lease, #updatedAtMs = :now',
  },

  /*
   * sweepOne (DeleteItem): deletes a record the sweep's scan found expired, only if it still is:
   * a claim may have renewed it since. :now now ms.
   */
  sweepOne: { condition: '#expiresAtMs <= :now' },

  /*
   * Scan filters. list: :state (only with a state), :now (only with nowMs: leaves out expired).
   * sweep: :now, projecting the key alone.
   */
  listState: '#state = :state',
  listLive: '#expiresAtMs > :now',
  sweepScan: { filter: '#expiresAtMs <= :now', projection: '#key' },
} as const;
