/** Default locations of the secagg-v1 vectors and schemas, from the package root (not the cwd). */
import { protocolDir } from '../../vectors/common.js';

export { packageRoot } from '../../vectors/common.js';
/** protocols/secagg-v1/vectors */
export function defaultVectorDir(): string { return protocolDir('secagg-v1', 'vectors'); }
/** protocols/secagg-v1/schemas */
export function defaultSchemaDir(): string { return protocolDir('secagg-v1', 'schemas'); }
