import { describe, expect, it } from 'vitest';
import { isDeadLetterTopic, replaySelection } from '../../console/dead-letters.ts';

describe('the console replay body', () => {
  it('no body or no offsets: every letter; offsets: canonical "<partition>:<offset>"', () => {
    expect(replaySelection(undefined)).toBeUndefined();
    expect(replaySelection({})).toBeUndefined();
    expect(replaySelection({ offsets: ['0:7', '2:007', '0:7'] })).toEqual(new Set(['0:7', '2:7']));
  });

  it('refuses anything else with 400, naming the field', () => {
    const refusal = (body: unknown) => {
      try {
        replaySelection(body);
      } catch (error) {
        return { status: (error as { statusCode: number }).statusCode, message: (error as Error).message };
      }
      throw new Error('accepted');
    };
    expect(refusal([])).toMatchObject({ status: 400, message: expect.stringContaining('JSON object') });
    expect(refusal({ offsets: [] })).toMatchObject({ status: 400, message: expect.stringContaining('offsets') });
    expect(refusal({ offsets: '0:1' })).toMatchObject({ status: 400, message: expect.stringContaining('offsets') });
    expect(refusal({ offsets: ['0:1', 3] })).toMatchObject({ status: 400, message: expect.stringContaining('offsets[1]') });
    expect(refusal({ offsets: ['-1:2'] })).toMatchObject({ status: 400, message: expect.stringContaining('offsets[0]') });
    expect(refusal({ offset: ['0:1'] })).toMatchObject({ status: 400, message: expect.stringContaining('"offset"') });
  });

  it('dead-letter topics are those ending in the suffix', () => {
    expect(isDeadLetterTopic('orders.placed.dlq', '.dlq')).toBe(true);
    expect(isDeadLetterTopic('orders.placed.dlq.replayed', '.dlq')).toBe(false);
    expect(isDeadLetterTopic('.dlq', '.dlq')).toBe(false);
  });
});
