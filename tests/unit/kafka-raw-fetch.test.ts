import { DynamicBuffer } from '@platformatic/dynamic-buffer';
import { Reader } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { recordsOf, releaseRecords } from '../../kafka/raw-fetch.ts';

/** A response's bytes as the connection has them: socket chunks, here of 4 bytes. */
function chunked(bytes: number[]): Reader {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 4) chunks.push(Buffer.from(bytes.slice(i, i + 4)));
  return new Reader(new DynamicBuffer(chunks));
}

const BYTES = Array.from({ length: 16 }, (_, i) => i);

describe("the raw fetch's records bytes", () => {
  it('are a view of the chunk when they lie in one, and a copy when they span chunks', () => {
    const reader = chunked(BYTES);
    reader.skip(4);
    const inOne = recordsOf(reader, 3);
    expect([...inOne]).toEqual([4, 5, 6]);
    expect(inOne.buffer).toBe(reader.buffer.buffers[1]!.buffer);
    reader.skip(2);
    expect([...recordsOf(reader, 7)]).toEqual([6, 7, 8, 9, 10, 11, 12]);
  });

  it('are copied into the buffer a released copy had, and never into a chunk handed back', () => {
    const reader = chunked(BYTES);
    reader.skip(2);
    const first = recordsOf(reader, 8);
    const other = recordsOf(reader, 8);
    // Not released yet: each copy has its own memory.
    expect(other.buffer).not.toBe(first.buffer);
    releaseRecords(first);
    reader.skip(4);
    const reused = recordsOf(reader, 8);
    expect(reused.buffer).toBe(first.buffer);
    expect([...reused]).toEqual([6, 7, 8, 9, 10, 11, 12, 13]);

    // A view of a socket chunk is the connection's: handing it back must not let a copy overwrite it.
    const large = new Reader(new DynamicBuffer([Buffer.alloc(64, 1), Buffer.alloc(8, 2)]));
    const view = recordsOf(large, 8);
    releaseRecords(view);
    large.skip(60);
    const spanning = recordsOf(large, 8);
    expect(spanning.buffer).not.toBe(view.buffer);
    expect([...view]).toEqual(Array(8).fill(1));
  });
});
