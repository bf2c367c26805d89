import { describe, expect, it } from 'vitest';
import { afterStep, type RampState } from '../faults/load.ts';

const DEADLINE_MS = 5000;

/** The verdicts of a ramp whose steps took `accepted` of `offered` (p99 1 s unless given), from the start. */
function ramp(steps: [offered: number, accepted: number, p99Ms?: number][]): (RampState & { next: string })[] {
  let state: RampState = { best: 0, saturated: 0 };
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

  it('repeats, and does not double, a step that took under 90% of what it offered, even one above the best before it', () => {
    // A 5-minute soak's probe (2026-12-08): 8,000/s all taken, 16,000/s 10,453 taken; the old rule went on to 32,000/s.
    const verdicts = ramp([
      [8000, 8007],
      [16000, 10453],
      [16000, 10520],
    ]);
    expect(verdicts.map((v) => v.next)).toEqual(['double', 'repeat', 'stop']);
    expect(verdicts.at(-1)!.best).toBe(10520);
  });

  it('repeats a step at twice the capacity and stops at the repeat', () => {
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
    expect(verdicts.at(-1)!).toMatchObject({ best: 1000, saturated: 0 });
  });

  it('repeats a saturated step while it still rises more than 10% above the best (the ingress warming), then stops', () => {
    const verdicts = ramp([
      [8000, 8003],
      [16000, 9000],
      [16000, 11000],
      [16000, 11200],
    ]);
    expect(verdicts.map((v) => v.next)).toEqual(['double', 'repeat', 'repeat', 'stop']);
    expect(verdicts.at(-1)!.best).toBe(11200);
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
