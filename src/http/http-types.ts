/** What the HTTP layer needs to know of a request, whatever the framework. */
export interface HttpRequestInfo {
  /** Upper-case method, e.g. `POST`. */
  method: string;
  /** The route pattern when the framework knows it (`/charges/:id`), else the path without the query. */
  route: string;
  /** The request target as sent, path and query (`/orders/42?currency=eur`). Part of the fingerprint. Default: `route`. */
  url?: string | undefined;
  /** A header's value by lower-case name; repeated headers as an array. */
  header(name: string): string | string[] | undefined;
  /**
   * The body as the framework has it: a parsed value (JSON object, form object), a string,
   * bytes, or `undefined` when there is none.
   */
  body: unknown;
  /** Body size in bytes when known (Content-Length or the bytes read), for the size limit. */
  bodyBytes?: number | undefined;
}

/** A response to send or that was sent: status, headers, body bytes. */
export interface HttpResponseData {
  status: number;
  /** Header pairs; names in lower case. */
  headers: [string, string][];
  body: Uint8Array;
}
