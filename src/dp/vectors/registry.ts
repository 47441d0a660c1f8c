/** Every dp-v1 vector kind, in the order they are generated and checked. */
import type { DpVectorKind } from './kind.js';
import { decodeSumKind, encodeKind } from './kinds-pipeline.js';
import { randomSourceKind } from './kinds-random.js';
import { roundingKind, rotationKind } from './kinds-rotation.js';
import { discreteGaussianKind, discreteLaplaceKind, poissonKind, skellamKind } from './kinds-samplers.js';

export const DP_KINDS: readonly DpVectorKind[] = [
  randomSourceKind, discreteLaplaceKind, discreteGaussianKind, poissonKind, skellamKind, rotationKind, roundingKind, encodeKind, decodeSumKind,
];

/** The kind named `name`, or undefined. */
export function dpKindByName(name: string): DpVectorKind | undefined {
  return DP_KINDS.find((k) => k.kind === name);
}
