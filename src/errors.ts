/**
 * The stable error codes, one list per family. A code is part of the public
 * API: its meaning never changes, and each is documented in the family's
 * table (`protocols/secagg-v1/errors.md`, `protocols/dp-v1/errors.md`,
 * `docs/crypto.md`). Throwing sites name a code of the union, so a typo is a
 * compile error rather than a new, undocumented code.
 */
export const SECAGG_CODES = [
  'SECAGG_ERR_ABORTED', 'SECAGG_ERR_BAD_CONFIG', 'SECAGG_ERR_BAD_GRAPH', 'SECAGG_ERR_BAD_MASK', 'SECAGG_ERR_BAD_MESSAGE',
  'SECAGG_ERR_BAD_PARAMS', 'SECAGG_ERR_BAD_SHARE', 'SECAGG_ERR_BAD_SIGNATURE', 'SECAGG_ERR_BAD_THRESHOLD', 'SECAGG_ERR_BAD_VECTOR',
  'SECAGG_ERR_BELOW_THRESHOLD', 'SECAGG_ERR_BOTH_SHARES_REQUESTED', 'SECAGG_ERR_DUPLICATE_ID', 'SECAGG_ERR_DUPLICATE_KEY',
  'SECAGG_ERR_INCONSISTENT_VIEW', 'SECAGG_ERR_KEY_MISMATCH', 'SECAGG_ERR_LOW_ORDER_KEY', 'SECAGG_ERR_NON_CANONICAL_KEY', 'SECAGG_ERR_NOT_SUBSET', 'SECAGG_ERR_NO_INPUT',
  'SECAGG_ERR_RECONSTRUCTION_FAILED', 'SECAGG_ERR_SELF_DROPPED', 'SECAGG_ERR_SENDER_MISMATCH', 'SECAGG_ERR_SESSION_MISMATCH', 'SECAGG_ERR_UNEXPECTED_MESSAGE',
  'SECAGG_ERR_UNKNOWN_ID',
] as const;
/** A secure-aggregation code (`protocols/secagg-v1/errors.md`). */
export type SecAggCode = (typeof SECAGG_CODES)[number];

export const DP_CODES = [
  'DP_ERR_ACCOUNTING_LIMIT', 'DP_ERR_ACCOUNTING_UNRELIABLE', 'DP_ERR_BAD_LEDGER', 'DP_ERR_BAD_PARAM', 'DP_ERR_BUDGET_EXCEEDED',
  'DP_ERR_ROUNDING_FAILED', 'DP_ERR_UNREACHABLE', 'DP_ERR_UNSUPPORTED', 'DP_ERR_WRAP_RISK',
] as const;
/** A differential-privacy code (`protocols/dp-v1/errors.md`). */
export type DpCode = (typeof DP_CODES)[number];

export const CRYPTO_CODES = [
  'CRYPTO_ERR_BAD_INPUT', 'CRYPTO_ERR_DECRYPT', 'CRYPTO_ERR_LOW_ORDER_KEY', 'SHAMIR_ERR_BAD_INPUT', 'SHAMIR_ERR_INCONSISTENT',
] as const;
/** A code of the crypto suite (`docs/crypto.md`). */
export type CryptoCode = (typeof CRYPTO_CODES)[number];

export const WIRE_CODES = [
  'WIRE_ERR_BAD_FIELD', 'WIRE_ERR_NON_CANONICAL', 'WIRE_ERR_OVERSIZE', 'WIRE_ERR_TRAILING_BYTES', 'WIRE_ERR_TRUNCATED',
  'WIRE_ERR_UNKNOWN_TYPE', 'WIRE_ERR_UNKNOWN_VERSION',
] as const;
/** A code of the wire envelope (`protocols/wire-v1/errors.md`). */
export type WireCode = (typeof WIRE_CODES)[number];

export const NET_CODES = [
  'NET_ERR_AUTH_FAILED', 'NET_ERR_CLOSED', 'NET_ERR_CONFIG_MISMATCH', 'NET_ERR_DUPLICATE_CONNECTION', 'NET_ERR_HANDSHAKE_TIMEOUT',
  'NET_ERR_IDLE_TIMEOUT', 'NET_ERR_INPUT_RELEASED', 'NET_ERR_INSECURE', 'NET_ERR_LEFT', 'NET_ERR_PROTOCOL', 'NET_ERR_RATE_LIMITED',
  'NET_ERR_SHUTDOWN', 'NET_ERR_TLS', 'NET_ERR_UNKNOWN_SITE', 'NET_ERR_UNREACHABLE',
] as const;
/** A code of the network transport and coordinator (`docs/deployment.md`). */
export type NetCode = (typeof NET_CODES)[number];

export const CONSORTIUM_CODES = [
  'CONSORTIUM_ERR_BAD_CONFIG', 'CONSORTIUM_ERR_BAD_KEY', 'CONSORTIUM_ERR_EXISTS',
  'STORE_ERR_CORRUPT', 'STORE_ERR_SCHEMA',
] as const;
/** A code of the consortium configuration, key files and the coordinator's store (`docs/deployment.md`). */
export type ConsortiumCode = (typeof CONSORTIUM_CODES)[number];

export const TRAIN_CODES = [
  'TRAIN_ERR_BACKEND', 'TRAIN_ERR_BAD_ADAPTER', 'TRAIN_ERR_BAD_CHECKPOINT', 'TRAIN_ERR_BAD_DATA', 'TRAIN_ERR_BAD_PARAM',
  'TRAIN_ERR_BAD_SAFETENSORS', 'TRAIN_ERR_UNSUPPORTED_MODEL',
] as const;
/** A code of the training engine (`docs/training.md`). */
export type TrainCode = (typeof TRAIN_CODES)[number];

export const FL_CODES = [
  'FL_ERR_ABORTED', 'FL_ERR_BAD_JOB', 'FL_ERR_BAD_TASK', 'FL_ERR_RESUME',
] as const;
/** A code of federated fine-tuning (`docs/federated.md`). */
export type FlCode = (typeof FL_CODES)[number];

export const HE_CODES = [
  'HE_ERR_BAD_CIPHERTEXT', 'HE_ERR_BAD_INPUT', 'HE_ERR_BAD_KEY', 'HE_ERR_BAD_OFFER', 'HE_ERR_BAD_PARAMS', 'HE_ERR_BAD_SIGNATURE',
  'HE_ERR_BAD_WRAP', 'HE_ERR_DECRYPT', 'HE_ERR_INSECURE', 'HE_ERR_KEY_MISMATCH', 'HE_ERR_MISMATCH', 'HE_ERR_NOT_RECIPIENT',
  'HE_ERR_TOO_MANY_SITES', 'HE_ERR_UNAVAILABLE', 'HE_ERR_WRAP_RISK',
] as const;
/** A code of homomorphic summation (`docs/he.md`). */
export type HeCode = (typeof HE_CODES)[number];

export const AUDIT_CODES = [
  'AUDIT_ERR_BAD_RANGE', 'AUDIT_ERR_BAD_RECORD', 'AUDIT_ERR_BAD_BUNDLE', 'AUDIT_ERR_WRITE', 'AUDIT_ERR_NO_BROWSER',
] as const;
/** A code of the audit transcript (`protocols/transcript-v1/spec.md`). */
export type AuditCode = (typeof AUDIT_CODES)[number];

/** Every code a {@link TallyError} can carry. */
export type TallyCode = SecAggCode | DpCode | CryptoCode | WireCode | NetCode | ConsortiumCode | TrainCode | FlCode | HeCode | AuditCode | 'INTERNAL_ERROR';

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
 * - {@link HeError}: homomorphic summation failed (node-seal missing, a key mismatch, a sum that does not decrypt).
 * - {@link InternalError}: a bug in tally; it should never happen.
 */
export class TallyError extends Error {
  /** Stable error code, e.g. `SECAGG_ERR_BELOW_THRESHOLD`. */
  readonly code: TallyCode;
  constructor(code: TallyCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A caller-supplied argument or configuration is invalid (wrong type, range or length). */
export class ValidationError extends TallyError {
  declare readonly code: TallyCode;
  constructor(code: TallyCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Bytes (wire messages, files, vectors) could not be decoded. */
export class CodecError extends TallyError {
  declare readonly code: TallyCode;
  constructor(code: TallyCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A cryptographic operation or check failed. */
export class CryptoError extends TallyError {
  declare readonly code: CryptoCode;
  constructor(code: CryptoCode, message: string, options?: { cause?: unknown }) {
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
  declare readonly code: SecAggCode;
  constructor(code: SecAggCode, message: string, round: number, peer?: number) {
    super(code, message);
    this.round = round;
    this.peer = peer;
  }
}

/** A differential-privacy parameter, accounting or budget check failed. */
export class DpError extends TallyError {
  declare readonly code: DpCode;
  constructor(code: DpCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A network peer or the transport failed: refused authentication, a timeout, a closed connection. */
export class NetError extends TallyError {
  declare readonly code: NetCode | WireCode;
  constructor(code: NetCode | WireCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * Homomorphic summation failed at run time: node-seal cannot be loaded, a
 * ciphertext is under another key or of another session, too many sites, a
 * sum that does not decrypt within its bound (`docs/he.md`).
 */
export class HeError extends TallyError {
  declare readonly code: HeCode;
  constructor(code: HeCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A broken internal invariant: a bug in tally, never caused by input. */
export class InternalError extends TallyError {
  constructor(message: string) {
    super('INTERNAL_ERROR', `${message} (this should never happen; please report it as a bug)`);
  }
}
