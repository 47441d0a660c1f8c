/**
 * A hand-held protobuf wire writer for the wire-v1 vectors and tests: it
 * writes exactly the bytes it is asked for (non-minimal varints, repeated or
 * unknown fields, unpacked lists, wrong lengths), which the envelope encoder
 * never does. Varints are written from numbers below 2^53.
 */
import { concatBytes } from '../../crypto/_validate.js';

/** Protobuf wire types. */
export const VARINT = 0;
export const LEN = 2;

/** The varint of `n`, minimal, or padded with `extra` continuation bytes (a non-minimal encoding of the same value). */
export function varint(n: number, extra = 0): Uint8Array {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n & 0x7f) | 0x80);
  out.push(n);
  for (let i = 0; i < extra; i++) { out[out.length - 1]! |= 0x80; out.push(0); }
  return Uint8Array.from(out);
}

/** The tag of field `field` with wire type `wt`. */
export const tag = (field: number, wt: number): Uint8Array => varint(field * 8 + wt);

/** A length-delimited field (bytes, string, packed list or message). */
export function lenField(field: number, data: Uint8Array | string, extraLen = 0): Uint8Array {
  const b = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  return concatBytes(tag(field, LEN), varint(b.length, extraLen), b);
}

/** A varint field. */
export const u32Field = (field: number, v: number, extra = 0): Uint8Array => concatBytes(tag(field, VARINT), varint(v, extra));

/** A packed repeated uint32 field. */
export const packed = (field: number, vs: readonly number[]): Uint8Array => lenField(field, concatBytes(...vs.map((v) => varint(v))));

/** An unpacked repeated uint32 field: one varint field per value. */
export const unpacked = (field: number, vs: readonly number[]): Uint8Array => concatBytes(...vs.map((v) => u32Field(field, v)));

/** The body field numbers of the envelope (spec §3.1). */
export const BODY_FIELD = {
  hello: 2, challenge: 3, auth: 4, welcome: 5, 'session-start': 6, secagg: 7, result: 8, abort: 9, error: 10,
} as const;

/**
 * A frame: 08 01 ‖ tag(field, LEN) ‖ varint(length) ‖ body, where the length
 * is the body's unless `declared` is given and its varint carries
 * `extraLen` padding bytes.
 */
export function frameOf(field: number, body: Uint8Array, o: { readonly declared?: number; readonly extraLen?: number } = {}): Uint8Array {
  return concatBytes(Uint8Array.of(0x08, 0x01), tag(field, LEN), varint(o.declared ?? body.length, o.extraLen ?? 0), body);
}

/** The body of a well-formed frame (after 08 01, the one-byte tag and the length). */
export function bodyOf(frame: Uint8Array): Uint8Array {
  let i = 3;
  while (frame[i]! >= 0x80) i++;
  return frame.subarray(i + 1);
}
