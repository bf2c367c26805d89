import { describe, expect, it } from 'vitest';
import { afterStep, type RampState } from '../faults/load.ts';

const DEADLINE_MS = 5000;

/** The verdicts of a ramp whose steps took `accepted` of `offered` (p99 1 s unless given), from the start. */
function ramp(steps: [offered: number, accepted: number, p99Ms?: number][]): (RampState & { next: string })[] {
  let state: RampState = { best: 0, flat: 0 };
  return steps.map(([offeredPerS, acceptedPerS, acceptedP99Ms = 1000]) => {
    const verdict = afterStep(state, { offeredPerS, acceptedPerS, acceptedP99Ms }, DEADLINE_MS);
    state = verdict;
    return verdict;
  });
}

describe('the capacity probe’s ramp', () => {
  it('doubles while every step takes what it offers', () => {
    expect(
      ramp([
        [250, 250],
        [500, 501],
        [1000, 1000],
      ]).map((v) => v.next),
    ).toEqual(['double', 'double', 'double']);
  });

  it('repeats, and does not double, a step that took under half of what it offered: it is twice the capacity already', () => {
    // A 30 s soak's probe (2026-12-07): 16,000/s all taken, 32,000/s 12,195 taken; its old rule went on to 64,000/s.
    const verdicts = ramp([
      [16000, 16012],
      [32000, 12195],
      [32000, 12400],
    ]);
    expect(verdicts.map((v) => v.next)).toEqual(['double', 'repeat', 'stop']);
    expect(verdicts.at(-1)!.best).toBe(16012);
  });

  it('goes on doubling after a warm-up dip that the repeat shows was one', () => {
    const verdicts = ramp([
      [250, 250],
      [500, 200],
      [500, 500],
      [1000, 1000],
    ]);
    expect(verdicts.map((v) => v.next)).toEqual(['double', 'repeat', 'double', 'double']);
    expect(verdicts.at(-1)!).toMatchObject({ best: 1000, flat: 0 });
  });

  it('stops at the second flat step in a row, a first one over half doubled as before', () => {
    const verdicts = ramp([
      [8000, 8003],
      [16000, 8500],
      [32000, 8600],
    ]);
    expect(verdicts.map((v) => v.next)).toEqual(['double', 'double', 'stop']);
    expect(verdicts.at(-1)!.best).toBe(8600);
  });

  it('stops when the accepted p99 passes the deadline, and does not count that step as the capacity', () => {
    const verdicts = ramp([
      [8000, 8000],
      [16000, 11114, 11000],
    ]);
    expect(verdicts.map((v) => v.next)).toEqual(['double', 'stop']);
    expect(verdicts.at(-1)!.best).toBe(8000);
  });
});
