/**
 * Homomorphic summation (he-sum-v1), the part that runs today: a site makes
 * (or is given) a BGV secret key, encrypts its integer vector under it, the
 * coordinator adds the sites' ciphertexts without any key and sends back one
 * sum ciphertext, and a key holder decrypts the sum. The coordinator sees
 * neither the inputs nor the sum.
 *
 * Encoding: values are integers in [0, 2^b), N to a ciphertext (batching:
 * slot i of the plaintext holds value i, so ciphertext addition adds
 * slot-wise mod t); a vector of any length fills ⌈length / N⌉ ciphertexts,
 * the last one padded with zeros. Encryption is symmetric and seeded: SEAL
 * writes c0 and a 64-byte seed in place of c1 (uniform, re-expanded by the
 * loader), which halves the bytes. Serialization is SEAL's, uncompressed
 * (`ComprModeType.none`): zstd, SEAL's default, saves nothing on
 * coefficients uniform mod q (measured: 32,972 bytes with zstd against
 * 32,962 without, for N = 4096), and uncompressed bytes can be checked
 * field by field before SEAL sees them.
 *
 * An envelope (little-endian) is
 *
 *     "HES1" | kind u8 (1 site, 2 sum) | params digest (16) | key id (16)
 *            | length u32 | sites u32 | ⌈length / N⌉ SEAL ciphertexts
 *
 * and every ciphertext has this set's exact size and layout: SEAL's header
 * and metadata byte for byte, each coefficient below its prime, and (seeded)
 * the seed's header. Anything else is refused with `HE_ERR_BAD_CIPHERTEXT`
 * before SEAL is called, so a bad envelope cannot crash the coordinator.
 *
 * Every SEAL object made here is deleted in a `finally`.
 * @module
 */
import { createHash } from 'node:crypto';
import { CodecError, HeError, InternalError, TallyError, ValidationError } from '../errors.js';
import { ciphertextBytes, HE_ENVELOPE_HEADER, HE_MAX_LENGTH, paramsDigest, type HeParams } from './params.js';
import {
  heContext,
  type HeContext, type SealCipherText, type SealDecryptor, type SealEncryptor, type SealKeyGenerator, type SealLayout,
  type SealObject, type SealPlainText, type SealPublicKey, type SealSecretKey, type SealSerializable,
} from './seal.js';

export { ciphertextBytes, envelopeBytes, HE_ENVELOPE_HEADER } from './params.js';
const MAGIC = [0x48, 0x45, 0x53, 0x31]; // "HES1"

/** What an envelope carries. */
export type HeEnvelopeKind = 'site' | 'sum';

/**
 * A BGV secret key of one parameter set. `bytes` is SEAL's serialization of
 * the key and is secret: whoever holds it can decrypt every site's vector.
 */
export interface HeSecretKey {
  readonly params: HeParams;
  /** SHA-256 of the key bytes (with a label and the set's digest), 16 bytes: names the key in every envelope. */
  readonly keyId: Uint8Array;
  readonly bytes: Uint8Array;
}

/** The header fields of a checked envelope. */
export interface HeEnvelopeInfo {
  readonly kind: HeEnvelopeKind;
  readonly keyId: Uint8Array;
  /** Values in the vector. */
  readonly length: number;
  /** Sites summed: 1 for a site's ciphertext. */
  readonly sites: number;
  /** Ciphertexts: ⌈length / N⌉. */
  readonly chunks: number;
}

/** A decrypted sum. */
export interface HeSum {
  /** The slot-wise sum, exact integers, each at most sites·(2^b − 1). */
  readonly values: Float64Array;
  /** How many sites it adds. */
  readonly sites: number;
}

function badBytes(message: string): never {
  throw new CodecError('HE_ERR_BAD_CIPHERTEXT', message);
}

function equalBytes(a: Uint8Array, aOff: number, b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (a[aOff + i] !== b[i]) return false;
  return true;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/**
 * Whether `bytes[off, off + L.bytes)` is exactly a SEAL object of layout L:
 * the fixed prefix and suffix, and every coefficient below its prime. A
 * failure names the first bad field.
 */
function checkLayout(bytes: Uint8Array, off: number, L: SealLayout, N: number): string | undefined {
  if (!equalBytes(bytes, off, L.prefix)) return 'its SEAL header or metadata is not this parameter set\'s';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = off + L.prefix.length;
  for (let poly = 0; poly < L.polys; poly++) {
    for (const q of L.moduli) {
      const qHi = Number(q >> 32n);
      const qLo = Number(q & 0xffffffffn);
      for (let i = 0; i < N; i++, p += 8) {
        const hi = view.getUint32(p + 4, true);
        if (hi > qHi || (hi === qHi && view.getUint32(p, true) >= qLo)) return 'a coefficient is not below its prime';
      }
    }
  }
  if (!equalBytes(bytes, p, L.suffix)) return 'its seed header is not SEAL\'s';
  return undefined;
}

/**
 * Reads and checks an envelope's framing against a parameter set, without
 * node-seal: magic, kind, the set's digest, length in 1…2^24, sites, and the
 * exact total size ({@link ciphertextBytes}). The ciphertexts themselves are
 * checked when an accumulator adds them or a key holder decrypts them.
 *
 * Throws `CodecError` `HE_ERR_BAD_CIPHERTEXT` (malformed, truncated or
 * oversized), `HeError` `HE_ERR_MISMATCH` (another parameter set's).
 */
export function readHeEnvelope(params: HeParams, bytes: Uint8Array): HeEnvelopeInfo {
  if (!(bytes instanceof Uint8Array)) badBytes('an envelope must be a Uint8Array');
  if (bytes.length < HE_ENVELOPE_HEADER) badBytes(`an envelope has at least ${HE_ENVELOPE_HEADER} bytes, got ${bytes.length}`);
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) badBytes('not an he-sum-v1 envelope (bad magic)');
  const kindByte = bytes[4]!;
  if (kindByte !== 1 && kindByte !== 2) badBytes(`unknown envelope kind ${kindByte}`);
  const kind: HeEnvelopeKind = kindByte === 1 ? 'site' : 'sum';
  if (!equalBytes(bytes, 5, paramsDigest(params))) throw new HeError('HE_ERR_MISMATCH', 'the envelope is of another parameter set');
  const keyId = bytes.slice(21, 37);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(37, true);
  const sites = view.getUint32(41, true);
  if (length < 1 || length > HE_MAX_LENGTH) badBytes(`length must be in 1…${HE_MAX_LENGTH}, got ${length}`);
  if (kind === 'site' && sites !== 1) badBytes(`a site's envelope holds 1 site, got ${sites}`);
  if (sites < 1 || sites > params.sites) badBytes(`a sum holds 1…${params.sites} sites, got ${sites}`);
  const chunks = Math.ceil(length / params.polyModulusDegree);
  const expected = HE_ENVELOPE_HEADER + chunks * ciphertextBytes(params, kind);
  if (bytes.length !== expected) badBytes(`a ${kind} envelope of ${length} values has ${expected} bytes, got ${bytes.length}`);
  return { kind, keyId, length, sites, chunks };
}


function writeHeader(out: Uint8Array, hc: HeContext, kind: HeEnvelopeKind, keyId: Uint8Array, length: number, sites: number): void {
  out.set(MAGIC, 0);
  out[4] = kind === 'site' ? 1 : 2;
  out.set(hc.digest, 5);
  out.set(keyId, 21);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(37, length, true);
  view.setUint32(41, sites, true);
}

/** The envelope checked against the context: framing, then every ciphertext's layout. */
function readChecked(hc: HeContext, bytes: Uint8Array, kind: HeEnvelopeKind): HeEnvelopeInfo {
  if (hc.seeded.bytes !== ciphertextBytes(hc.params, 'site') || hc.full.bytes !== ciphertextBytes(hc.params, 'sum')) {
    throw new InternalError('SEAL\'s ciphertext sizes are not the ones tally computes');
  }
  const info = readHeEnvelope(hc.params, bytes);
  if (info.kind !== kind) badBytes(`expected a ${kind} envelope, got a ${info.kind} envelope`);
  const L = kind === 'site' ? hc.seeded : hc.full;
  for (let c = 0; c < info.chunks; c++) {
    const why = checkLayout(bytes, HE_ENVELOPE_HEADER + c * L.bytes, L, hc.params.polyModulusDegree);
    if (why !== undefined) badBytes(`ciphertext ${c} of the envelope is malformed: ${why}`);
  }
  return info;
}

function chunkOf(hc: HeContext, bytes: Uint8Array, kind: HeEnvelopeKind, c: number): Uint8Array {
  const L = kind === 'site' ? hc.seeded : hc.full;
  const off = HE_ENVELOPE_HEADER + c * L.bytes;
  return bytes.subarray(off, off + L.bytes);
}

function deleteAll(objects: readonly (SealObject | undefined | void)[]): void {
  for (const o of objects) if (o) o.delete();
}

function keyIdOf(hc: HeContext, bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update('tally/he-sum-v1/key-id').update(hc.digest).update(bytes).digest().subarray(0, 16));
}

/** A SEAL secret key loaded from checked bytes; the caller deletes it. */
function loadKey(hc: HeContext, key: HeSecretKey): SealSecretKey {
  if (key === null || typeof key !== 'object' || !(key.bytes instanceof Uint8Array) || !(key.keyId instanceof Uint8Array)) {
    throw new ValidationError('HE_ERR_BAD_KEY', 'not an HeSecretKey');
  }
  if (key.bytes.length !== hc.secretKey.bytes) throw new ValidationError('HE_ERR_BAD_KEY', `a secret key of this set has ${hc.secretKey.bytes} bytes, got ${key.bytes.length}`);
  const why = checkLayout(key.bytes, 0, hc.secretKey, hc.params.polyModulusDegree);
  if (why !== undefined) throw new ValidationError('HE_ERR_BAD_KEY', `malformed secret key: ${why}`);
  if (hex(keyIdOf(hc, key.bytes)) !== hex(key.keyId)) throw new ValidationError('HE_ERR_BAD_KEY', 'the key id is not this key\'s');
  const sk = hc.lib.SecretKey();
  try {
    sk.loadArray(hc.context, key.bytes);
    return sk;
  } catch (err) {
    sk.delete();
    throw new ValidationError('HE_ERR_BAD_KEY', `SEAL refused the secret key: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * A fresh secret key for a parameter set, made by a site with SEAL's key
 * generator (a uniform ternary secret, from SEAL's PRNG seeded by the
 * system's randomness).
 */
export async function heKeygen(params: HeParams): Promise<HeSecretKey> {
  const hc = await heContext(params);
  let kg: SealKeyGenerator | undefined;
  let sk: SealSecretKey | undefined;
  try {
    kg = hc.lib.KeyGenerator(hc.context);
    sk = kg.secretKey();
    const bytes = sk.saveArray(hc.lib.ComprModeType.none);
    if (bytes.length !== hc.secretKey.bytes) throw new InternalError('SEAL made a secret key of another size');
    return Object.freeze({ params, keyId: keyIdOf(hc, bytes), bytes });
  } finally {
    deleteAll([sk, kg]);
  }
}

/**
 * A secret key from its bytes (as {@link HeSecretKey.bytes}), checked: this
 * set's exact layout, every coefficient below its prime, and SEAL loads it.
 * Throws `ValidationError` `HE_ERR_BAD_KEY`.
 */
export async function heImportKey(params: HeParams, bytes: Uint8Array): Promise<HeSecretKey> {
  const hc = await heContext(params);
  if (!(bytes instanceof Uint8Array)) throw new ValidationError('HE_ERR_BAD_KEY', 'a secret key is a Uint8Array');
  const copy = bytes.slice();
  const key = Object.freeze({ params, keyId: keyIdOf(hc, copy), bytes: copy });
  loadKey(hc, key).delete();
  return key;
}

/**
 * Encrypts a site's vector: integers in [0, 2^b), any length from 1 to
 * 2^24. Returns the site's envelope (about 8.05 bytes a value with
 * `bgv-4096-q60`).
 *
 * Throws `ValidationError` `HE_ERR_BAD_INPUT` (not a Uint32Array, a bad
 * length, a value of more than b bits) or `HE_ERR_BAD_KEY`.
 */
export async function heEncrypt(key: HeSecretKey, values: Uint32Array): Promise<Uint8Array> {
  return heEncryptWith(await heContext(key.params), key, values);
}

/**
 * {@link heEncrypt} with the set's context already loaded (`heContext`):
 * synchronous, for a caller that cannot await (the secagg client's R2 seam).
 */
export function heEncryptWith(hc: HeContext, key: HeSecretKey, values: Uint32Array): Uint8Array {
  const { bits } = hc.params;
  checkKeyParams(hc, key);
  if (!(values instanceof Uint32Array)) throw new ValidationError('HE_ERR_BAD_INPUT', 'values must be a Uint32Array');
  if (values.length < 1 || values.length > HE_MAX_LENGTH) throw new ValidationError('HE_ERR_BAD_INPUT', `length must be in 1…${HE_MAX_LENGTH}, got ${values.length}`);
  if (bits < 32) {
    const limit = 2 ** bits;
    for (let i = 0; i < values.length; i++) {
      if (values[i]! >= limit) throw new ValidationError('HE_ERR_BAD_INPUT', `values[${i}] = ${values[i]} has more than ${bits} bits`);
    }
  }
  return encryptSlots(hc, key, values.length, (c, pt) => {
    const N = hc.params.polyModulusDegree;
    hc.encoder.encode(values.subarray(c * N, Math.min(values.length, (c + 1) * N)), pt);
  });
}

/**
 * A site's envelope of residues mod t (each an integer in [0, t)): the
 * `he+masks` mode encrypts y = x + Σ ±masks mod t (he-sum-v1 §8.2), whose
 * slots are not below 2^b. The envelope is a site envelope like any other.
 */
export function heEncryptResiduesWith(hc: HeContext, key: HeSecretKey, residues: Float64Array): Uint8Array {
  checkKeyParams(hc, key);
  if (!(residues instanceof Float64Array) || residues.length < 1 || residues.length > HE_MAX_LENGTH) {
    throw new ValidationError('HE_ERR_BAD_INPUT', `residues must be a Float64Array of 1…${HE_MAX_LENGTH} values`);
  }
  const t = Number(hc.params.plainModulus);
  for (let i = 0; i < residues.length; i++) {
    const v = residues[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= t) throw new ValidationError('HE_ERR_BAD_INPUT', `residue ${i} = ${v} is not an integer in [0, t)`);
  }
  return encryptSlots(hc, key, residues.length, (c, pt) => encodeResidues(hc, residues, c, pt));
}

/** Piece c of a vector of residues mod t, into `pt` (zero-padded), as 32- or 64-bit slots. */
function encodeResidues(hc: HeContext, residues: Float64Array, c: number, pt: SealPlainText): void {
  const N = hc.params.polyModulusDegree;
  const piece = residues.subarray(c * N, Math.min(residues.length, (c + 1) * N));
  if (hc.params.plainModulus < 1n << 32n) {
    hc.encoder.encode(Uint32Array.from(piece), pt);
  } else {
    const wide = new BigUint64Array(piece.length);
    for (let i = 0; i < piece.length; i++) wide[i] = BigInt(piece[i]!);
    hc.encoder.encode(wide, pt);
  }
}

function checkKeyParams(hc: HeContext, key: HeSecretKey): void {
  if (key === null || typeof key !== 'object' || key.params === undefined || hex(paramsDigest(key.params)) !== hex(hc.digest)) {
    throw new ValidationError('HE_ERR_BAD_KEY', 'the key is not of this parameter set');
  }
}

/** Encrypts ⌈length / N⌉ pieces, `fill` encoding piece c, into a site's envelope. */
function encryptSlots(hc: HeContext, key: HeSecretKey, length: number, fill: (c: number, pt: SealPlainText) => void): Uint8Array {
  const N = hc.params.polyModulusDegree;
  const chunks = Math.ceil(length / N);
  const L = hc.seeded;
  const out = new Uint8Array(HE_ENVELOPE_HEADER + chunks * L.bytes);
  writeHeader(out, hc, 'site', key.keyId, length, 1);
  const sk = loadKey(hc, key);
  let kg: SealKeyGenerator | undefined;
  let pk: SealPublicKey | undefined;
  let enc: SealEncryptor | undefined;
  let pt: SealPlainText | undefined;
  try {
    // SEAL's Encryptor wants a public key even for symmetric encryption; it is made here and dropped.
    kg = hc.lib.KeyGenerator(hc.context, sk);
    pk = kg.createPublicKey();
    enc = hc.lib.Encryptor(hc.context, pk, sk);
    pt = hc.lib.PlainText();
    for (let c = 0; c < chunks; c++) {
      let ser: SealSerializable | undefined;
      try {
        fill(c, pt);
        ser = enc.encryptSymmetricSerializable(pt);
        const bytes = ser.saveArray(hc.lib.ComprModeType.none);
        if (bytes.length !== L.bytes) throw new InternalError(`SEAL wrote a seeded ciphertext of ${bytes.length} bytes, not ${L.bytes}`);
        out.set(bytes, HE_ENVELOPE_HEADER + c * L.bytes);
      } finally {
        ser?.delete();
      }
    }
  } finally {
    deleteAll([pt, enc, pk, kg, sk]);
  }
  return out;
}

/** The options of {@link HeAccumulator.create}. */
export interface HeAccumulatorOptions {
  /** Accept only ciphertexts under this key id; default: the first site's. */
  readonly keyId?: Uint8Array;
}

/**
 * The coordinator's side: adds sites' envelopes of one parameter set and
 * length, one ciphertext at a time (load, add, delete), holding only the
 * running sum: ⌈length / N⌉ full ciphertexts in SEAL's memory, whatever the
 * number of sites. It holds no key and learns nothing.
 *
 * `add` checks the whole envelope before it changes the sum, and a refused
 * envelope leaves the sum as it was. Call {@link dispose} when done.
 */
export class HeAccumulator {
  readonly params: HeParams;
  readonly length: number;
  private readonly hc: HeContext;
  private keyId: Uint8Array | undefined;
  private readonly sums: (SealCipherText | undefined)[];
  private added = 0;
  private disposed = false;

  private constructor(hc: HeContext, length: number, keyId: Uint8Array | undefined) {
    this.hc = hc;
    this.params = hc.params;
    this.length = length;
    this.keyId = keyId;
    this.sums = new Array<SealCipherText | undefined>(Math.ceil(length / hc.params.polyModulusDegree)).fill(undefined);
  }

  /** An empty sum of `length` values. Throws `HE_ERR_BAD_INPUT` for a bad length. */
  static async create(params: HeParams, length: number, options: HeAccumulatorOptions = {}): Promise<HeAccumulator> {
    if (!Number.isInteger(length) || length < 1 || length > HE_MAX_LENGTH) throw new ValidationError('HE_ERR_BAD_INPUT', `length must be an integer in 1…${HE_MAX_LENGTH}, got ${String(length)}`);
    if (options.keyId !== undefined && (!(options.keyId instanceof Uint8Array) || options.keyId.length !== 16)) throw new ValidationError('HE_ERR_BAD_INPUT', 'keyId must be 16 bytes');
    return HeAccumulator.fromContext(await heContext(params), length, options);
  }

  /** {@link create} with the set's context already loaded: synchronous (the secagg server's aggregator seam). */
  static fromContext(hc: HeContext, length: number, options: HeAccumulatorOptions = {}): HeAccumulator {
    if (!Number.isInteger(length) || length < 1 || length > HE_MAX_LENGTH) throw new ValidationError('HE_ERR_BAD_INPUT', `length must be an integer in 1…${HE_MAX_LENGTH}, got ${String(length)}`);
    if (options.keyId !== undefined && (!(options.keyId instanceof Uint8Array) || options.keyId.length !== 16)) throw new ValidationError('HE_ERR_BAD_INPUT', 'keyId must be 16 bytes');
    return new HeAccumulator(hc, length, options.keyId?.slice());
  }

  /**
   * Adds a plaintext vector of residues mod t (integers in [0, t), `length`
   * of them) to the sum, slot by slot mod t: no key needed. The `he+masks`
   * coordinator removes the masks with it (he-sum-v1 §8.4). Needs at least
   * one site added.
   */
  addPlain(residues: Float64Array): void {
    this.live();
    if (this.added === 0) throw new ValidationError('HE_ERR_BAD_INPUT', 'no site was added');
    const t = Number(this.params.plainModulus);
    if (!(residues instanceof Float64Array) || residues.length !== this.length) throw new ValidationError('HE_ERR_BAD_INPUT', `expected ${this.length} residues`);
    for (let i = 0; i < residues.length; i++) {
      const v = residues[i]!;
      if (!Number.isInteger(v) || v < 0 || v >= t) throw new ValidationError('HE_ERR_BAD_INPUT', `residue ${i} = ${v} is not an integer in [0, t)`);
    }
    const hc = this.hc;
    const pt = hc.lib.PlainText();
    try {
      for (let c = 0; c < this.sums.length; c++) {
        encodeResidues(hc, residues, c, pt);
        hc.evaluator.addPlain(this.sums[c]!, pt, this.sums[c]!);
      }
    } finally {
      pt.delete();
    }
  }

  /** Sites added so far. */
  get sites(): number {
    return this.added;
  }

  /**
   * Adds one site's envelope.
   *
   * Throws `CodecError` `HE_ERR_BAD_CIPHERTEXT` (malformed, truncated,
   * oversized, a sum's envelope), `HeError` `HE_ERR_MISMATCH` (another
   * parameter set or length), `HE_ERR_KEY_MISMATCH` (another key id than the
   * accumulator's), `HE_ERR_TOO_MANY_SITES` (more than the set's n).
   */
  add(envelope: Uint8Array): void {
    this.live();
    const hc = this.hc;
    const info = readChecked(hc, envelope, 'site');
    if (info.length !== this.length) throw new HeError('HE_ERR_MISMATCH', `the envelope has ${info.length} values, the sum ${this.length}`);
    if (this.keyId !== undefined && hex(info.keyId) !== hex(this.keyId)) {
      throw new HeError('HE_ERR_KEY_MISMATCH', `the envelope is under key ${hex(info.keyId)}, the sum under ${hex(this.keyId)}`);
    }
    if (this.added >= this.params.sites) throw new HeError('HE_ERR_TOO_MANY_SITES', `the parameter set holds ${this.params.sites} sites; the sum has them all`);
    const first = this.added === 0;
    let c = 0;
    // The first site's ciphertexts become the sum; later ones load into one scratch ciphertext, reused.
    const scratch = first ? undefined : hc.lib.CipherText();
    try {
      for (; c < info.chunks; c++) {
        if (scratch === undefined) {
          const ct = hc.lib.CipherText();
          this.sums[c] = ct;
          ct.loadArray(hc.context, chunkOf(hc, envelope, 'site', c));
        } else {
          scratch.loadArray(hc.context, chunkOf(hc, envelope, 'site', c));
          hc.evaluator.add(this.sums[c]!, scratch, this.sums[c]!);
        }
      }
    } catch (err) {
      scratch?.delete();
      // Unreachable for checked bytes; undo what was added so the sum stays as it was.
      this.rollback(envelope, c, first);
      throw new CodecError('HE_ERR_BAD_CIPHERTEXT', `SEAL refused ciphertext ${c}: ${(err as Error).message}`, { cause: err });
    }
    scratch?.delete();
    this.keyId ??= info.keyId;
    this.added++;
  }

  private rollback(envelope: Uint8Array, upTo: number, first: boolean): void {
    const hc = this.hc;
    try {
      if (first) {
        // Chunk upTo was made and failed to load: it goes too.
        for (let c = 0; c <= upTo && c < this.sums.length; c++) { this.sums[c]?.delete(); this.sums[c] = undefined; }
        return;
      }
      for (let c = 0; c < upTo; c++) {
        const ct = hc.lib.CipherText();
        try {
          ct.loadArray(hc.context, chunkOf(hc, envelope, 'site', c));
          hc.evaluator.sub(this.sums[c]!, ct, this.sums[c]!);
        } finally {
          ct.delete();
        }
      }
    } catch {
      this.dispose();
      throw new InternalError('an accumulator could not undo a refused envelope; it is disposed');
    }
  }

  /**
   * The sum's envelope, for a key holder to decrypt (about 16 bytes a value
   * with `bgv-4096-q60`: c1 has no seed after addition). Throws
   * `HE_ERR_BAD_INPUT` when no site was added.
   */
  finish(): Uint8Array {
    this.live();
    if (this.added === 0) throw new ValidationError('HE_ERR_BAD_INPUT', 'no site was added');
    const hc = this.hc;
    const L = hc.full;
    const out = new Uint8Array(HE_ENVELOPE_HEADER + this.sums.length * L.bytes);
    writeHeader(out, hc, 'sum', this.keyId!, this.length, this.added);
    for (let c = 0; c < this.sums.length; c++) {
      const bytes = this.sums[c]!.saveArray(hc.lib.ComprModeType.none);
      if (bytes.length !== L.bytes) throw new InternalError(`SEAL wrote a sum ciphertext of ${bytes.length} bytes, not ${L.bytes}`);
      out.set(bytes, HE_ENVELOPE_HEADER + c * L.bytes);
    }
    return out;
  }

  /** Frees the sum's SEAL memory; the accumulator cannot be used after. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (let c = 0; c < this.sums.length; c++) {
      this.sums[c]?.delete();
      this.sums[c] = undefined;
    }
  }

  private live(): void {
    if (this.disposed) throw new ValidationError('HE_ERR_BAD_INPUT', 'the accumulator is disposed');
  }
}

/**
 * Decrypts a sum's envelope with the key it is under, then decodes it:
 * each slot mod t, which is the sum itself as t > n·(2^b − 1).
 *
 * Checks, in order: the envelope (`CodecError` `HE_ERR_BAD_CIPHERTEXT`,
 * `HeError` `HE_ERR_MISMATCH`), its key id against the key's
 * (`HE_ERR_KEY_MISMATCH`), then per ciphertext SEAL's noise budget (none left
 * means it cannot decrypt: under another key than its key id says, or
 * corrupted), every slot ≤ sites·(2^b − 1) and the padding slots after the
 * vector's end = 0 (`HeError` `HE_ERR_DECRYPT`).
 */
export async function heDecryptSum(key: HeSecretKey, envelope: Uint8Array): Promise<HeSum> {
  const hc = await heContext(key.params);
  const info = readChecked(hc, envelope, 'sum');
  if (hex(info.keyId) !== hex(key.keyId)) throw new HeError('HE_ERR_KEY_MISMATCH', `the sum is under key ${hex(info.keyId)}, not ${hex(key.keyId)}`);
  const N = hc.params.polyModulusDegree;
  const bound = info.sites * (2 ** hc.params.bits - 1);
  const values = new Float64Array(info.length);
  decryptChunks(hc, key, envelope, 'sum', info, (c, slots, dec, ct) => {
    if (dec.invariantNoiseBudget(ct) <= 0) throw new HeError('HE_ERR_DECRYPT', `sum ciphertext ${c} has no noise budget left: it is under another key or corrupted`);
    const base = c * N;
    const take = Math.min(N, info.length - base);
    const decoded = slots();
    for (let i = 0; i < N; i++) {
      const v = decoded[i]!;
      if (i < take) {
        if (v > bound) throw new HeError('HE_ERR_DECRYPT', `slot ${base + i} decrypts to ${v}, above the bound ${bound} of ${info.sites} sites`);
        values[base + i] = v;
      } else if (v !== 0) {
        throw new HeError('HE_ERR_DECRYPT', `padding slot ${base + i} decrypts to ${v}, not 0: the sum is under another key or corrupted`);
      }
    }
  });
  return { values, sites: info.sites };
}

/**
 * The slots of an envelope (a site's or a sum's) under `key`, as residues mod
 * t, without the bound checks of {@link heDecryptSum}: what any key holder
 * can read from a ciphertext it obtains. In the `he+masks` mode a site's
 * envelope decrypts to its input plus masks mod t, uniformly distributed
 * (he-sum-v1 §8); in the `he` mode to its input.
 */
export async function heDecryptSlots(key: HeSecretKey, envelope: Uint8Array): Promise<Float64Array> {
  const hc = await heContext(key.params);
  const kind = readHeEnvelope(hc.params, envelope).kind;
  const info = readChecked(hc, envelope, kind);
  if (hex(info.keyId) !== hex(key.keyId)) throw new HeError('HE_ERR_KEY_MISMATCH', `the envelope is under key ${hex(info.keyId)}, not ${hex(key.keyId)}`);
  const N = hc.params.polyModulusDegree;
  const values = new Float64Array(info.length);
  decryptChunks(hc, key, envelope, kind, info, (c, slots) => {
    values.set(slots().subarray(0, Math.min(N, info.length - c * N)), c * N);
  });
  return values;
}

/**
 * Decrypts an envelope's ciphertexts one at a time: `each(c, slots, dec, ct)`
 * gets ciphertext c loaded in `ct` and its decrypted slots (mod t, as
 * float64: exact for t < 2^53) from `slots()`. SEAL's errors become
 * `HE_ERR_DECRYPT`; every SEAL object is deleted.
 */
function decryptChunks(
  hc: HeContext, key: HeSecretKey, envelope: Uint8Array, kind: HeEnvelopeKind, info: HeEnvelopeInfo,
  each: (c: number, slots: () => Float64Array, dec: SealDecryptor, ct: SealCipherText) => void,
): void {
  const wide = hc.params.plainModulus >= 1n << 32n;
  const sk = loadKey(hc, key);
  let dec: SealDecryptor | undefined;
  let ct: SealCipherText | undefined;
  let pt: SealPlainText | undefined;
  try {
    dec = hc.lib.Decryptor(hc.context, sk);
    ct = hc.lib.CipherText();
    pt = hc.lib.PlainText();
    for (let c = 0; c < info.chunks; c++) {
      try {
        ct.loadArray(hc.context, chunkOf(hc, envelope, kind, c));
        let decoded: Float64Array | undefined;
        const slots = (): Float64Array => {
          if (decoded === undefined) {
            dec!.decrypt(ct!, pt!);
            decoded = wide ? Float64Array.from(hc.encoder.decodeBigInt(pt!, false), Number) : Float64Array.from(hc.encoder.decode(pt!, false));
          }
          return decoded;
        };
        each(c, slots, dec, ct);
      } catch (err) {
        if (err instanceof TallyError) throw err;
        throw new HeError('HE_ERR_DECRYPT', `SEAL could not decrypt ${kind} ciphertext ${c}: ${(err as Error).message}`, { cause: err });
      }
    }
  } finally {
    deleteAll([pt, ct, dec, sk]);
  }
}
