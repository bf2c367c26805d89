import type { Writable } from 'node:stream';

/**
 * Resolves once `stream` has taken its buffered bytes ('drain'), or is gone
 * ('close'): what a writer awaits after write() returned false, so a slow
 * reader slows the writing (and the reading feeding it), never grows memory.
 */
export function drained(stream: Pick<Writable, 'on' | 'off'>): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
