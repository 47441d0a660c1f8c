/**
 * The error hierarchy of tally. Every failure that a caller may need to act on
 * is a {@link TallyError} carrying a stable, machine-readable `code`. Codes are
 * part of the public API: the secure-aggregation codes are listed, with their
 * meaning, in `protocols/secagg-v1/errors.md` and never change meaning.
 *
 * - {@link ValidationError}: a caller passed a bad argument or configuration.
 * - {@link CodecError}: bytes on the wire or in a file could not be decoded.
 * - {@link CryptoError}: a cryptographic check failed (bad tag, low-order key…).
 * - {@link SecAggError}: a secure-aggregation invariant was violated; the session aborts.
 * - {@link DpError}: a differential-privacy parameter or budget check failed.
 * - {@link InternalError}: a bug in tally; it should never happen.
 */
export class TallyError extends Error {
  /** Stable error code, e.g. `SECAGG_ERR_BELOW_THRESHOLD`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A caller-supplied argument or configuration is invalid (wrong type, range or length). */
export class ValidationError extends TallyError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Bytes (wire messages, files, vectors) could not be decoded. */
export class CodecError extends TallyError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A cryptographic operation or check failed. */
export class CryptoError extends TallyError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * A secure-aggregation protocol guard fired. `round` is the protocol round
 * (0 = AdvertiseKeys … 4 = Unmasking) in which it fired, and `peer` the client
 * id at fault when one is known.
 */
export class SecAggError extends TallyError {
  readonly round: number;
  readonly peer: number | undefined;
  constructor(code: string, message: string, round: number, peer?: number) {
    super(code, message);
    this.round = round;
    this.peer = peer;
  }
}

/** A differential-privacy parameter, accounting or budget check failed. */
export class DpError extends TallyError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A broken internal invariant: a bug in tally, never caused by input. */
export class InternalError extends TallyError {
  constructor(message: string) {
    super('INTERNAL_ERROR', `${message} (this should never happen; please report it as a bug)`);
  }
}
