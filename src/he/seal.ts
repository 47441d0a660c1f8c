/**
 * The one place tally loads node-seal (Microsoft SEAL 4.1 compiled to
 * WebAssembly), lazily: nothing else in tally imports this folder, so tally
 * builds, installs and runs without node-seal, and only the first HE call
 * pays its load (about 0.1 s). node-seal 6.0.3 is pinned: 7.0.0's
 * WebAssembly needs the exception-handling proposal, which Node 20 lacks.
 *
 * A {@link HeContext} is made once per parameter set and kept: the SEAL
 * context, a batch encoder and an evaluator (none holds a secret), and the
 * byte layouts of this set's serialized ciphertexts and secret keys, taken
 * from SEAL's own output. Those layouts let sum.ts check every byte it hands
 * to SEAL: SEAL's loader aborts the whole WebAssembly instance on some
 * malformed inputs (measured: flipped size fields end in "Aborted()" and a
 * dead module), so untrusted bytes never reach it unchecked.
 *
 * Every SEAL object made here is deleted here ({@link releaseHeContexts});
 * the types below describe just the part of node-seal's API that tally uses.
 * @module
 */
import { HeError, InternalError, ValidationError } from '../errors.js';
import { paramsDigest, type HeParams } from './params.js';

/** A SEAL object: its WebAssembly memory is freed by `delete()` alone. */
export interface SealObject { delete(): void }
export interface SealVector extends SealObject { readonly size: number }
export interface SealModulus extends SealObject { readonly value: bigint }
export interface SealEncryptionParameters extends SealObject {
  setPolyModulusDegree(n: number): void;
  setCoeffModulus(v: SealVector): void;
  setPlainModulus(m: SealModulus): void;
  readonly coeffModulus: BigUint64Array;
}
export interface SealQualifiers extends SealObject { readonly usingBatching: boolean; parametersSet(): boolean }
export interface SealContextData extends SealObject { readonly qualifiers: SealQualifiers; readonly totalCoeffModulusBitCount: number }
export interface SealContext extends SealObject {
  parametersSet(): boolean;
  readonly firstContextData: SealContextData;
  readonly keyContextData: SealContextData;
}
export interface SealCipherText extends SealObject {
  loadArray(context: SealContext, bytes: Uint8Array): void;
  saveArray(compression?: unknown): Uint8Array;
  readonly size: number;
}
export type SealPlainText = SealObject;
export interface SealSecretKey extends SealObject {
  loadArray(context: SealContext, bytes: Uint8Array): void;
  saveArray(compression?: unknown): Uint8Array;
}
export type SealPublicKey = SealObject;
export interface SealSerializable extends SealObject { saveArray(compression?: unknown): Uint8Array }
export interface SealKeyGenerator extends SealObject {
  secretKey(): SealSecretKey;
  createPublicKey(): SealPublicKey;
}
export interface SealEncryptor extends SealObject {
  encryptSymmetricSerializable(plain: SealPlainText): SealSerializable;
  encryptSymmetric(plain: SealPlainText, destination?: SealCipherText): SealCipherText | void;
}
export interface SealDecryptor extends SealObject {
  decrypt(cipher: SealCipherText, destination?: SealPlainText): SealPlainText | void;
  invariantNoiseBudget(cipher: SealCipherText): number;
}
export interface SealBatchEncoder extends SealObject {
  encode(values: Uint32Array | BigUint64Array, destination?: SealPlainText): SealPlainText | void;
  decode(plain: SealPlainText, signed?: boolean): Int32Array | Uint32Array;
  decodeBigInt(plain: SealPlainText, signed?: boolean): BigInt64Array | BigUint64Array;
  readonly slotCount: number;
}
export interface SealEvaluator extends SealObject {
  add(a: SealCipherText, b: SealCipherText, destination?: SealCipherText): SealCipherText | void;
  sub(a: SealCipherText, b: SealCipherText, destination?: SealCipherText): SealCipherText | void;
  /** Ciphertext plus plaintext, slot-wise mod t (no key: the coordinator removes masks with it). */
  addPlain(a: SealCipherText, plain: SealPlainText, destination?: SealCipherText): SealCipherText | void;
  subPlain(a: SealCipherText, plain: SealPlainText, destination?: SealCipherText): SealCipherText | void;
}
/** The part of node-seal's `SEALLibrary` that tally uses. */
export interface SealLibrary {
  readonly Version: string;
  readonly SchemeType: { readonly bgv: unknown };
  readonly SecurityLevel: { readonly tc128: unknown };
  readonly ComprModeType: { readonly none: unknown; readonly zstd: unknown };
  readonly CoeffModulus: {
    Create(polyModulusDegree: number, bitSizes: Int32Array): SealVector;
    MaxBitCount(polyModulusDegree: number, securityLevel?: unknown): number;
  };
  readonly PlainModulus: { Batching(polyModulusDegree: number, bitSize: number): SealModulus };
  EncryptionParameters(scheme: unknown): SealEncryptionParameters;
  Context(params: SealEncryptionParameters, expandModChain: boolean, securityLevel: unknown): SealContext;
  KeyGenerator(context: SealContext, secretKey?: SealSecretKey): SealKeyGenerator;
  SecretKey(): SealSecretKey;
  Encryptor(context: SealContext, publicKey: SealPublicKey, secretKey?: SealSecretKey): SealEncryptor;
  Decryptor(context: SealContext, secretKey: SealSecretKey): SealDecryptor;
  BatchEncoder(context: SealContext): SealBatchEncoder;
  Evaluator(context: SealContext): SealEvaluator;
  CipherText(): SealCipherText;
  PlainText(): SealPlainText;
}

/** A WebAssembly.Memory (ES2022's lib has no WebAssembly types). */
export interface WasmMemory { readonly buffer: ArrayBuffer }
interface WasmApi {
  instantiate: (...args: unknown[]) => Promise<unknown>;
  readonly Memory: abstract new (...args: never[]) => WasmMemory;
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** A loaded node-seal and, when it could be found, its WebAssembly memory. */
export interface Seal {
  readonly lib: SealLibrary;
  /** The instance's linear memory (a diagnostic: see {@link sealHeapBytes}). */
  readonly memory: WasmMemory | undefined;
}

/** The module tally loads: node-seal's default entry (Node, UMD, throws on transparent ciphertexts). */
export const SEAL_MODULE = 'node-seal';

/**
 * Loads node-seal through `importer` and starts its WebAssembly instance.
 * Uncached: {@link loadSeal} is the one tally uses; this one lets a test
 * show what happens without node-seal. While the instance starts,
 * `WebAssembly.instantiate` is wrapped (and put back at once) to find the
 * instance's exported memory, since node-seal does not expose it.
 *
 * Throws `HeError` `HE_ERR_UNAVAILABLE` when the module cannot be imported
 * or does not start.
 */
export async function loadSealFrom(importer: () => Promise<unknown>): Promise<Seal> {
  let init: () => Promise<unknown>;
  try {
    const mod = (await importer()) as { default?: unknown };
    const f = typeof mod.default === 'function' ? mod.default : (mod.default as { default?: unknown } | undefined)?.default;
    if (typeof f !== 'function') throw new Error('the module has no default export to call');
    init = f as () => Promise<unknown>;
  } catch (err) {
    throw new HeError('HE_ERR_UNAVAILABLE', `node-seal cannot be loaded (install it: npm install node-seal@6.0.3): ${(err as Error).message}`, { cause: err });
  }
  const memories: WasmMemory[] = [];
  const original = wasmApi.instantiate;
  const wrapped = async function (this: unknown, ...args: unknown[]): Promise<unknown> {
    const r = await original.apply(this, args);
    type Instance = { exports?: Record<string, unknown> };
    const instance = (r as { instance?: Instance }).instance ?? (r as Instance);
    for (const v of Object.values(instance?.exports ?? {})) if (v instanceof wasmApi.Memory) memories.push(v);
    return r;
  };
  let lib: SealLibrary;
  try {
    wasmApi.instantiate = wrapped;
    lib = (await init()) as SealLibrary;
    if (typeof lib?.Context !== 'function' || typeof lib.CipherText !== 'function') throw new Error('not a node-seal library');
  } catch (err) {
    throw new HeError('HE_ERR_UNAVAILABLE', `node-seal did not start: ${(err as Error).message}`, { cause: err });
  } finally {
    wasmApi.instantiate = original;
  }
  return { lib, memory: memories.length === 1 ? memories[0] : undefined };
}

let loading: Promise<Seal> | undefined;

/** node-seal, loaded on first use and kept. Throws `HeError` `HE_ERR_UNAVAILABLE`. */
export function loadSeal(): Promise<Seal> {
  if (loading === undefined) {
    loading = loadSealFrom(() => import(SEAL_MODULE));
    // A failed load may be retried (after installing node-seal, say).
    loading.catch(() => { loading = undefined; });
  }
  return loading;
}

/**
 * Bytes of node-seal's WebAssembly memory, or undefined when it is not loaded
 * or its memory was not found. The memory grows and never shrinks, so a flat
 * figure across many rounds means no SEAL object is left behind.
 */
export async function sealHeapBytes(): Promise<number | undefined> {
  if (loading === undefined) return undefined;
  try {
    return (await loading).memory?.buffer.byteLength;
  } catch {
    return undefined;
  }
}

/** Where the parts of one serialized SEAL object lie (uncompressed, `ComprModeType.none`). */
export interface SealLayout {
  /** Total bytes. */
  readonly bytes: number;
  /** Bytes [0, prefix.length) equal these exactly: SEAL's header, the parms_id, sizes, scale. */
  readonly prefix: Uint8Array;
  /** Coefficients: `polys` polynomials × the `moduli` in order × N little-endian uint64, each below its modulus. */
  readonly polys: number;
  readonly moduli: readonly bigint[];
  /** After the coefficients: bytes that equal this exactly, then `seedBytes` free bytes (the seed of c1). */
  readonly suffix: Uint8Array;
  readonly seedBytes: number;
}

/** One parameter set's SEAL objects and layouts, made once and kept. */
export interface HeContext {
  readonly params: HeParams;
  readonly digest: Uint8Array;
  readonly lib: SealLibrary;
  readonly context: SealContext;
  readonly encoder: SealBatchEncoder;
  readonly evaluator: SealEvaluator;
  /** A site's seeded ciphertext: c0 and the 64-byte seed that expands to c1. */
  readonly seeded: SealLayout;
  /** A full ciphertext (c0, c1): the coordinator's sums. */
  readonly full: SealLayout;
  /** A secret key (NTT form, every prime of the key level). */
  readonly secretKey: SealLayout;
}

const contexts = new Map<string, Promise<HeContext>>();
const made = new Set<HeContext>();

/** The seeded ciphertext's tail: a SEAL header (16 bytes) and the PRNG type (1 byte), then a 64-byte seed. */
const SEED_HEADER = 17;
const SEED_BYTES = 64;

function layout(sample: Uint8Array, polys: number, moduli: readonly bigint[], N: number, seeded: boolean): SealLayout {
  const data = polys * moduli.length * N * 8;
  const tail = seeded ? SEED_HEADER + SEED_BYTES : 0;
  const prefixLength = sample.length - data - tail;
  // SEAL 4.1: header (16), parms_id (32), is_ntt_form (1), size, degree, coeff_modulus_size, scale, correction
  // factor (8 each) = 89 bytes for a ciphertext; a plaintext (secret key) has 64; then the data's own header (16) and count (8).
  if (prefixLength !== 113 && prefixLength !== 88) {
    throw new InternalError(`node-seal's serialization is not the one tally knows (a ${polys}-polynomial object of ${sample.length} bytes)`);
  }
  return Object.freeze({
    bytes: sample.length,
    prefix: sample.slice(0, prefixLength),
    polys,
    moduli,
    suffix: sample.slice(prefixLength + data, prefixLength + data + (seeded ? SEED_HEADER : 0)),
    seedBytes: seeded ? SEED_BYTES : 0,
  });
}

async function makeContext(params: HeParams): Promise<HeContext> {
  const { lib } = await loadSeal();
  const N = params.polyModulusDegree;
  const owned: SealObject[] = [];
  const keep = <T extends SealObject>(o: T): T => { owned.push(o); return o; };
  let context: SealContext | undefined;
  let encoder: SealBatchEncoder | undefined;
  let evaluator: SealEvaluator | undefined;
  try {
    const parms = keep(lib.EncryptionParameters(lib.SchemeType.bgv));
    parms.setPolyModulusDegree(N);
    parms.setCoeffModulus(keep(lib.CoeffModulus.Create(N, Int32Array.from(params.coeffModulusBits))));
    const plain = keep(lib.PlainModulus.Batching(N, params.plainModulusBits));
    if (plain.value !== params.plainModulus) throw new InternalError(`SEAL's batching prime ${plain.value} is not params.plainModulus ${params.plainModulus}`);
    parms.setPlainModulus(plain);
    const q = [...parms.coeffModulus];
    if (q.length !== params.coeffModulus.length || q.some((v, i) => v !== params.coeffModulus[i])) {
      throw new InternalError(`SEAL's coefficient primes ${q.join(', ')} are not params.coeffModulus`);
    }
    context = lib.Context(parms, true, lib.SecurityLevel.tc128);
    if (!context.parametersSet()) {
      throw new ValidationError('HE_ERR_INSECURE', `SEAL refuses the parameter set ${params.set} at 128-bit security`);
    }
    const first = keep(context.firstContextData);
    const qualifiers = keep(first.qualifiers);
    if (!qualifiers.usingBatching) throw new InternalError(`SEAL does not batch with the parameter set ${params.set}`);
    encoder = lib.BatchEncoder(context);
    evaluator = lib.Evaluator(context);
    if (encoder.slotCount !== N) throw new InternalError(`SEAL's slot count ${encoder.slotCount} is not N = ${N}`);
    // Layouts from SEAL's own output, with a throwaway key.
    const kg = keep(lib.KeyGenerator(context));
    const sk = keep(kg.secretKey());
    const pk = keep(kg.createPublicKey());
    const enc = keep(lib.Encryptor(context, pk, sk));
    const zero = keep(encoder.encode(new Uint32Array(N)) as SealPlainText);
    const ser = keep(enc.encryptSymmetricSerializable(zero));
    const seededBytes = ser.saveArray(lib.ComprModeType.none);
    const a = keep(lib.CipherText());
    a.loadArray(context, seededBytes);
    const b = keep(lib.CipherText());
    enc.encryptSymmetric(zero, b);
    evaluator.add(a, b, a);
    const fullBytes = a.saveArray(lib.ComprModeType.none);
    const skBytes = sk.saveArray(lib.ComprModeType.none);
    const hc: HeContext = Object.freeze({
      params,
      digest: paramsDigest(params),
      lib,
      context,
      encoder,
      evaluator,
      seeded: layout(seededBytes, 1, params.dataModulus, N, true),
      full: layout(fullBytes, 2, params.dataModulus, N, false),
      secretKey: layout(skBytes, 1, params.coeffModulus, N, false),
    });
    made.add(hc);
    return hc;
  } catch (err) {
    evaluator?.delete();
    encoder?.delete();
    context?.delete();
    if (err instanceof HeError || err instanceof ValidationError || err instanceof InternalError) throw err;
    throw new HeError('HE_ERR_UNAVAILABLE', `node-seal failed to set up the parameter set ${params.set}: ${(err as Error).message}`, { cause: err });
  } finally {
    for (const o of owned.reverse()) o.delete();
  }
}

/** The context of a parameter set: made on first use (loading node-seal), then the same one. */
export function heContext(params: HeParams): Promise<HeContext> {
  const key = Buffer.from(paramsDigest(params)).toString('hex');
  let p = contexts.get(key);
  if (p === undefined) {
    p = makeContext(params);
    contexts.set(key, p);
    p.catch(() => { contexts.delete(key); });
  }
  return p;
}

/**
 * Deletes every kept context, encoder and evaluator. Objects made from them
 * must be gone first (an accumulator disposed); later calls make new ones.
 */
export async function releaseHeContexts(): Promise<void> {
  const all = [...contexts.values()];
  contexts.clear();
  await Promise.allSettled(all);
  for (const hc of made) {
    hc.evaluator.delete();
    hc.encoder.delete();
    hc.context.delete();
  }
  made.clear();
}
