// A line diff (longest common subsequence) laid out side by side: schemas are small, so O(n*m) is fine.
export function diffLines(left, right) {
  const n = left.length;
  const m = right.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i][j] = left[i] === right[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const rows = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && left[i] === right[j]) rows.push({ kind: 'same', left: { no: ++i, text: left[i - 1] }, right: { no: ++j, text: right[j - 1] } });
    else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) rows.push({ kind: 'add', left: null, right: { no: ++j, text: right[j - 1] } });
    else rows.push({ kind: 'del', left: { no: ++i, text: left[i - 1] }, right: null });
  }
  return rows;
}
