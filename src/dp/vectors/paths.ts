/** Default locations of the dp-v1 vectors and schemas, from the package root (not the cwd). */
import { protocolDir } from '../../vectors/common.js';

/** protocols/dp-v1/vectors */
export function defaultDpVectorDir(): string { return protocolDir('dp-v1', 'vectors'); }
/** protocols/dp-v1/schemas */
export function defaultDpSchemaDir(): string { return protocolDir('dp-v1', 'schemas'); }
