import { expect } from 'chai';
import { HolderTable } from '../../../src/secagg/client/peers.js';

describe('secagg/client HolderTable', () => {
  it('finds each holder\'s slot by id (given in any order), and no slot for anyone else', () => {
    const t = new HolderTable([40, 3, 17, 9, 1000]);
    expect(Array.from(t.ids)).to.deep.equal([3, 9, 17, 40, 1000]);
    expect(t.size).to.equal(5);
    expect([3, 9, 17, 40, 1000].map((id) => t.slot(id))).to.deep.equal([0, 1, 2, 3, 4]);
    for (const id of [0, 1, 4, 18, 999, 1001]) {
      expect(t.slot(id)).to.equal(-1);
      expect(t.has(id)).to.equal(false);
    }
    expect(new HolderTable([]).slot(1)).to.equal(-1);
  });

  it('slots are disjoint views of one buffer; a non-holder has none', () => {
    const t = new HolderTable([2, 5, 7]);
    const buf = t.slots(4);
    expect(buf.length).to.equal(12);
    t.at(buf, 4, 5).fill(0xaa);
    expect(Array.from(buf)).to.deep.equal([0, 0, 0, 0, 0xaa, 0xaa, 0xaa, 0xaa, 0, 0, 0, 0]);
    expect(() => t.at(buf, 4, 6)).to.throw(RangeError, 'client 6 is not a share holder');
  });
});
