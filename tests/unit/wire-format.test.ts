import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DecodeError } from '../../core/errors.ts';
import { frame, unframe } from '../../core/wire-format.ts';

describe('Confluent wire format', () => {
  it('puts magic byte 0 and the big-endian schema id before the payload', () => {
    const framed = frame(0x01020304, Buffer.from([0xaa, 0xbb]));
    expect([...framed]).toEqual([0, 1, 2, 3, 4, 0xaa, 0xbb]);
  });

  it('round-trips any id and payload', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.uint8Array({ maxLength: 64 }), (id, bytes) => {
        const { schemaId, payload } = unframe(frame(id, Buffer.from(bytes)));
        expect(schemaId).toBe(id);
        expect([...payload]).toEqual([...bytes]);
      }),
    );
  });

  it.each([
    ['null', null, /no value/],
    ['too short', Buffer.from([0, 0, 1]), /shorter than the 5-byte/],
    ['wrong magic byte', Buffer.from([7, 0, 0, 0, 1, 2]), /magic byte 0 \(found 0x07\)/],
  ])('refuses %s with a DecodeError that says why', (_name, input, reason) => {
    expect(() => unframe(input)).toThrowError(DecodeError);
    expect(() => unframe(input)).toThrowError(reason);
  });
});
