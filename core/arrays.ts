/** `list` cut into consecutive runs of `counts[i]` items (a merged request's results handed back to each caller). */
export function splitByCounts<T>(list: readonly T[], counts: readonly number[]): T[][] {
  let start = 0;
  return counts.map((count) => list.slice(start, (start += count)));
}
