/**
 * The project's one canonical JSON: object keys sorted (by UTF-16 code
 * units, as `Array.prototype.sort` orders them), no whitespace, values as
 * `JSON.stringify` writes them. What every hash over a JSON document uses:
 * the consortium hash, the job hash, the audit transcript's records.
 */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
