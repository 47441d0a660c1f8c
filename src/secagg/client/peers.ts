/**
 * What a client keeps about its share holders between rounds, packed: the
 * ids of U1 ∩ (N(u) ∪ {u}) in increasing order, and per holder a fixed-size
 * slot in one buffer per field (mask public key, share-encryption key,
 * received ciphertext). A Uint8Array costs about 200 bytes of bookkeeping
 * beyond its contents, so one array per neighbour and field would make a
 * client's state several times larger than its data: with thousands of
 * simulated clients in one process (or a client with thousands of
 * neighbours), the packed form is what keeps memory O(k) bytes per client.
 */
export class HolderTable {
  /** Holder ids, strictly increasing (this client included). */
  readonly ids: Uint32Array;

  constructor(ids: readonly number[]) {
    this.ids = Uint32Array.from(ids).sort();
  }

  get size(): number {
    return this.ids.length;
  }

  /** The slot of `id`, or −1 when it is not a holder (binary search). */
  slot(id: number): number {
    let lo = 0, hi = this.ids.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.ids[mid]!;
      if (v === id) return mid;
      if (v < id) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
  }

  has(id: number): boolean {
    return this.slot(id) >= 0;
  }

  /** A buffer with one `width`-byte slot per holder. */
  slots(width: number): Uint8Array {
    return new Uint8Array(width * this.ids.length);
  }

  /** The `width`-byte slot of `id` in `buf` (a view: writes go to `buf`). */
  at(buf: Uint8Array, width: number, id: number): Uint8Array {
    const s = this.slot(id);
    if (s < 0) throw new RangeError(`client ${id} is not a share holder`);
    return buf.subarray(s * width, (s + 1) * width);
  }
}
