import { appendFileSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';

/**
 * Loaded into `sluice up` by the overload soak (NODE_OPTIONS=--import, SLUICE_FAULTS_MEMORY_FILE): once a second, one
 * line of what its RSS is made of (MB), so the report says what grew (V8's young and old generations, buffers outside
 * the heap) and not only that the RSS did.
 */
const file = process.env.SLUICE_FAULTS_MEMORY_FILE;

/** RssAnon and RssFile of /proc/self/status, in MB. */
function kernelView(): { rssAnon: number; rssFile: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rssAnon: Math.round(kb('RssAnon') / 1024), rssFile: Math.round(kb('RssFile') / 1024) };
}

/** The open sockets' queued bytes (Node's private handle list: the probe only reads it, once a second), in KB. */
function socketQueues(): { sockets: number; unwrittenKb: number; unreadKb: number } {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  let sockets = 0;
  let unwritten = 0;
  let unread = 0;
  for (const handle of handles) {
    if (!(handle instanceof Object) || typeof (handle as Socket).writableLength !== 'number' || (handle as Socket).remotePort === undefined) continue;
    sockets += 1;
    unwritten += (handle as Socket).writableLength;
    unread += (handle as Socket).readableLength;
  }
  return { sockets, unwrittenKb: Math.round(unwritten / 1024), unreadKb: Math.round(unread / 1024) };
}

if (file !== undefined && process.argv.includes('up')) {
  const mb = (bytes: number): number => Math.round(bytes / 1048576);
  setInterval(() => {
    const usage = process.memoryUsage();
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, mb(s.space_size)]));
    const heap = getHeapStatistics();
    const line = {
      rss: mb(usage.rss),
      heapUsed: mb(usage.heapUsed),
      newSpace: spaces.new_space ?? 0,
      oldSpace: spaces.old_space ?? 0,
      otherHeap: mb(usage.heapTotal) - (spaces.new_space ?? 0) - (spaces.old_space ?? 0),
      heapPhysical: mb(heap.total_physical_size),
      v8Malloced: mb(heap.malloced_memory),
      v8MallocedPeak: mb(heap.peak_malloced_memory),
      external: mb(usage.external),
      arrayBuffers: mb(usage.arrayBuffers),
      // The RSS outside all of the above: anonymous (malloc's heap and mmaps, V8's) and file-backed (the binary, libraries).
      ...kernelView(),
      // Bytes of answers the clients have not read yet and of requests read and not yet parsed, over the open connections.
      ...socketQueues(),
    };
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  }, 1000).unref();
}
