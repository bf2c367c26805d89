import { describe, expect, it } from 'vitest';
import { chooseLane } from '../faults/open-loop.ts';

/** Connections with `unanswered[i]` requests unanswered each; `dead` lists those being replaced. */
const lanes = (unanswered: number[], dead: number[] = []) => unanswered.map((n, i) => ({ alive: !dead.includes(i), waiting: Array.from({ length: n + 2 }, (_, k) => k), head: 2 }));

describe('the soak generator’s choice of connection', () => {
  it('takes the next connection in turn that has room under the bound, and how much', () => {
    expect(chooseLane(lanes([0, 0, 0]), 1, 32)).toEqual({ slot: 1, room: 32, next: 2 });
    // Full and dead connections are passed over; the look wraps round.
    expect(chooseLane(lanes([5, 32, 40, 31], [0]), 1, 32)).toEqual({ slot: 3, room: 1, next: 4 });
    expect(chooseLane(lanes([30, 32, 32]), 1, 32)).toEqual({ slot: 0, room: 2, next: 1 });
  });

  it('spreads the bursts over the full connections in turn when every one is full, not onto one', () => {
    const full = lanes([32, 40, 32, 33], [1]);
    const chosen: number[] = [];
    let turn = 0;
    for (let burst = 0; burst < 6; burst++) {
      const { slot, room, next } = chooseLane(full, turn, 32);
      expect(room).toBeLessThanOrEqual(0);
      chosen.push(slot);
      turn = next;
    }
    expect(chosen).toEqual([0, 2, 3, 0, 2, 3]);
  });

  it('with no connection alive, writes to the next in turn (its replacement is being opened)', () => {
    expect(chooseLane(lanes([0, 0], [0, 1]), 3, 32)).toEqual({ slot: 1, room: 0, next: 4 });
  });
});
