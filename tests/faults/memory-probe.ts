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

/** V8's page size: its heap is mapped in anonymous regions of exactly this many KB (large objects aside). */
const V8_PAGE_KB = 256;

/**
 * The RSS of V8's heap pages, in use and pooled, in MB: anonymous mappings of V8_PAGE_KB (/proc/self/smaps). Node 24's
 * V8 (13.6) keeps the pages a collection frees in a pool for reuse and returns them to the system only in a
 * memory-reducing collection, so this minus heapPhysical is what the pool holds: the heap's peak, kept. Read every
 * PAGES_EVERY lines (smaps is ~2,000 mappings here).
 */
function v8PagesMb(): number {
  let kb = 0;
  let inPage = false;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ (\d+)\s*(\S*)/.exec(line);
    if (head !== null) {
      inPage = head[3] === '0' && head[4] === '' && (parseInt(head[2]!, 16) - parseInt(head[1]!, 16)) / 1024 === V8_PAGE_KB;
      continue;
    }
    if (inPage && line.startsWith('Rss:')) kb += Number(/(\d+)/.exec(line)?.[1] ?? 0);
  }
  return Math.round(kb / 1024);
}
const PAGES_EVERY = 5;

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
  let tick = 0;
  let v8Pages = 0;
  setInterval(() => {
    if (tick++ % PAGES_EVERY === 0) v8Pages = v8PagesMb();
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
      // V8's pages in use and pooled (v8PagesMb, at most PAGES_EVERY seconds old): the pool is this less heapPhysical.
      v8Pages,
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
