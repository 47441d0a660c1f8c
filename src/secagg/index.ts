/**
 * `tally/secagg`: secure aggregation (secagg-v1), Bonawitz et al. CCS 2017
 * with the SecAgg+ neighbour graph of Bell et al. CCS 2020. The normative
 * description is protocols/secagg-v1/spec.md.
 *
 * @example
 * import { ServerDriver, ClientDriver, LockstepNetwork } from 'tally/secagg';
 */
export * from './config.js';
export * from './messages.js';
export { encodeClientMessage, decodeClientMessage, encodeServerMessage, decodeServerMessage, WIRE_VERSION } from './codec.js';
export { startClient, handleServerMessage, setInput, abortClient, type StartClientOptions, type ClientState, type ClientStep } from './client/index.js';
export { createServer, receiveMessage, closeRound, abortServer, expectedClients, type CreateServerOptions, type ServerState, type ServerStep, type Rejection, type DropRecord } from './server/index.js';
export { validateSession, sessionGraph, checkInput } from './session.js';
export { completeGraph, hararyGraph, type Graph } from './graph.js';
export { findSecAggPlusParams, validateThreshold, type SecAggPlusParams, type SecAggPlusParamsInput } from './params.js';
export { packVector, unpackVector, packedLength, reduce, checkRange } from '../crypto/vector.js';
export { MaskAccumulator, expandMask, type MaskTerm } from '../crypto/mask.js';
export { pairwiseMaskKey, selfMaskKey, shareEncryptionKey, sealShares, openShares, SHARE_BYTES, SHARE_CIPHERTEXT_BYTES } from './keys.js';
export { ServerDriver, ClientDriver, type ServerChannel, type ClientChannel, type DeadlinePolicy, type SessionListener, type ServerOutcome, type ClientOutcome, type RoundRecord, type ServerDriverOptions, type ClientDriverOptions } from './driver.js';
export { LockstepNetwork, type LockstepOptions, type LockstepClient, type InFlight } from './lockstep.js';
export { roundOf } from './server/index.js';
export { clientRoundOf } from './client/index.js';
export type { Aggregator, AggregatorFactory } from '../crypto/aggregator.js';
export { maskedSum } from '../crypto/aggregator.js';
