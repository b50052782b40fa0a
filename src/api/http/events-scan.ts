/**
 * The forms in which the scanner of append bodies and NDJSON lines (events-body.ts, which documents
 * the canonical-form rules) leaves an event's `data` and `metadata` unparsed, for wire.ts to store.
 */

/**
 * A `data` or `metadata` value kept as the text it was written as, which is not (or not known to
 * be) its compact form: the stored text is JSON.stringify(JSON.parse(text)).
 */
export class JsonText {
  constructor(
    /** The value's source text, without the whitespace around it. */
    readonly text: string,
  ) {}

  /** The compact JSON text that is stored for this value (`replacer` as JSON.stringify's). */
  compact(replacer?: (key: string, value: unknown) => unknown): string {
    return JSON.stringify(JSON.parse(this.text), replacer);
  }
}

/**
 * A `data` or `metadata` value whose source bytes are already the UTF-8 of
 * JSON.stringify(JSON.parse(source)), so they are stored as they are: a view of the body, never
 * decoded or copied before the store copies it into its ring.
 */
export class JsonBytes {
  constructor(readonly bytes: Uint8Array) {}
}
