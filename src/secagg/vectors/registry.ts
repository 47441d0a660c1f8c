/** Every secagg-v1 vector kind, in the order they are generated and checked. */
import { configKind, keyAgreementKind, maskExpansionKind, vectorPackingKind } from './kinds-basic.js';
import { codecKind, drbgKind } from './kinds-encoding.js';
import { maliciousServerKind } from './kinds-malicious.js';
import { maliciousClientKind } from './kinds-server.js';
import { ed25519Kind } from './kinds-ed25519.js';
import { sessionBelowThresholdKind, sessionCompleteKind, sessionDropoutR1Kind, sessionDropoutR2Kind, sessionRetryKind } from './kinds-sessions.js';
import { maskedInputKind, shamirKind, shareEncryptionKind } from './kinds-shares.js';
import type { VectorKind } from './kind.js';

export const KINDS: readonly VectorKind[] = [
  drbgKind, configKind, keyAgreementKind, maskExpansionKind, vectorPackingKind, shamirKind, shareEncryptionKind, maskedInputKind, codecKind,
  sessionCompleteKind, sessionDropoutR1Kind, sessionDropoutR2Kind, sessionBelowThresholdKind, sessionRetryKind, maliciousServerKind,
  maliciousClientKind, ed25519Kind,
];

/** The kind named `name`, or undefined. */
export function kindByName(name: string): VectorKind | undefined {
  return KINDS.find((k) => k.kind === name);
}
