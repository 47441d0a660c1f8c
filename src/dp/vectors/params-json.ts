/** The JSON form of encodeUpdate / decodeSum parameters in the dp-v1 vectors (byte strings as hex). */
import type { Sigma2 } from '../discrete-gaussian.js';
import type { EncodeParams, NoiseKind } from '../encode.js';
import { bytes, hex } from './_common.js';

/** Encoding parameters as written in a vector; `clip`, `beta`, `noise` are absent in decode-only cases. */
export interface ParamsJson {
  clip?: number;
  scale: number;
  bits: number;
  beta?: number;
  noise?: { kind: string; sigma?: number | Sigma2 };
  rotationSeed: string;
  maxRoundingTries?: number;
}

/** Encode parameters to JSON (the σ² rational copied, the seed in hex). */
export function paramsToJson(p: EncodeParams): ParamsJson {
  const sigma = p.noise.sigma;
  return {
    clip: p.clip, scale: p.scale, bits: p.bits, beta: p.beta,
    noise: { kind: p.noise.kind, ...(sigma === undefined ? {} : { sigma: typeof sigma === 'number' ? sigma : { num: sigma.num, den: sigma.den } }) },
    rotationSeed: hex(p.rotationSeed),
    ...(p.maxRoundingTries === undefined ? {} : { maxRoundingTries: p.maxRoundingTries }),
  };
}

/** JSON to encode parameters, passed on unvalidated so that the library does the refusing. */
export function paramsFromJson(j: ParamsJson): EncodeParams {
  return {
    clip: j.clip as number, scale: j.scale, bits: j.bits, beta: j.beta as number,
    noise: j.noise === undefined ? { kind: 'none' } : { kind: j.noise.kind as NoiseKind, ...(j.noise.sigma === undefined ? {} : { sigma: j.noise.sigma }) },
    rotationSeed: bytes(j.rotationSeed, 'rotationSeed'),
    ...(j.maxRoundingTries === undefined ? {} : { maxRoundingTries: j.maxRoundingTries }),
  };
}
