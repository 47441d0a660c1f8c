/**
 * `--only TEXT` of the benchmark suites: a case runs when TEXT occurs in its
 * name as whole words, so `--only n=1000` picks `complete n=1000 m=10` and
 * not `secagg+ n=10000 m=100k`, and `--only r2` still picks every case with
 * r2 dropouts (`r2-dropout`).
 */
export function selects(name: string, only: string | undefined): boolean {
  if (only === undefined) return true;
  const word = /[\p{L}\p{N}_]/u;
  for (let at = name.indexOf(only); at >= 0; at = name.indexOf(only, at + 1)) {
    const before = at === 0 ? '' : name[at - 1]!, after = name[at + only.length] ?? '';
    const startsWord = before === '' || !word.test(before) || !word.test(only[0] ?? '');
    const endsWord = after === '' || !word.test(after) || !word.test(only[only.length - 1] ?? '');
    if (startsWord && endsWord) return true;
  }
  return false;
}
