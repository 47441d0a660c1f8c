/** Every secagg-v1 vector kind, in the order they are generated and checked. */
import { configKind, keyAgreementKind, maskExpansionKind, vectorPackingKind } from './kinds-basic.js';
import { codecKind, drbgKind } from './kinds-encoding.js';
import { maliciousServerKind } from './kinds-malicious.js';
import { sessionBelowThresholdKind, sessionCompleteKind, sessionDropoutR1Kind, sessionDropoutR2Kind } from './kinds-sessions.js';
import { maskedInputKind, shamirKind, shareEncryptionKind } from './kinds-shares.js';
import type { VectorKind } from './kind.js';

export const KINDS: readonly VectorKind[] = [
  drbgKind, configKind, keyAgreementKind, maskExpansionKind, vectorPackingKind, shamirKind, shareEncryptionKind, maskedInputKind, codecKind,
  sessionCompleteKind, sessionDropoutR1Kind, sessionDropoutR2Kind, sessionBelowThresholdKind, maliciousServerKind,
];

/** The kind named `name`, or undefined. */
export function kindByName(name: string): VectorKind | undefined {
  return KINDS.find((k) => k.kind === name);
}
