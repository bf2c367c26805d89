import { execFileSync } from 'node:child_process';
import { INGRESS_STAGES, type Stage } from './profile-summary.ts';

/**
 * The ingress's stages (bench/profile-summary.ts) from a `perf record -g` of it (`node bench/ingress-ab.ts … --perf
 * <dir>`): perf samples CPU time, the kernel's included, so a socket write counts what it cost, not how long the
 * scheduler kept the process from finishing it (V8's profile samples wall time: on the shared bench machine its
 * produce-request writes showed 16% of the ingress's samples where perf found 2%). Each sample goes to the stage of
 * the innermost frame a stage recognises, as in profile-summary; besides those, the JIT compiler's and Node's HTTP
 * parser (llhttp, C++) frames, the other threads' (V8's workers), and what no frame names ("other": the event
 * loop's epoll and socket reads, V8's runtime). With a µs figure each share is given in µs per event too.
 *
 *   node bench/perf-stages.ts <perf.data> [cpu µs per event] [--syscalls]
 *
 * --syscalls splits each stage into its user and kernel (system call) samples.
 */

const STAGES: readonly Stage[] = [
  { name: 'garbage collection', frame: /Scaveng|Heap::|MarkCompact|Sweep|MinorMS|ConcurrentMarking/ },
  { name: 'JIT compiler', frame: /compiler::|Compil|Maglev/ },
  ...INGRESS_STAGES.slice(1).map((s) => (s.name.startsWith('HTTP') ? { name: s.name, frame: new RegExp(`${s.frame.source}|http_parser|llhttp`) } : s)),
];

interface Sample {
  thread: string;
  frames: string[];
}

/** `perf script` output: a header line per sample, then one frame per line (address, then symbol), then a blank line. */
function samples(text: string): Sample[] {
  const out: Sample[] = [];
  let current: Sample | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (current) out.push(current);
      current = undefined;
    } else if (!/^\s/.test(line)) {
      current = { thread: line.split(/\s+/)[0]!, frames: [] };
    } else if (current) {
      const frame = line.trim();
      const space = frame.indexOf(' ');
      // A project file as profile-summary names it (`kafka/producer.ts`), whichever checkout it ran from.
      current.frames.push((space < 0 ? frame : frame.slice(space + 1)).replace(/file:\/\/\S*?\/(?=[\w-]+\/[\w.-]+\.ts:)/, ''));
    }
  }
  if (current) out.push(current);
  return out;
}

function stageOf(sample: Sample): string {
  for (const frame of sample.frames) {
    const stage = STAGES.find((s) => s.frame.test(frame));
    if (stage) return stage.name;
  }
  return sample.thread === 'MainThread' || sample.thread === 'node' ? 'other' : `other threads (${sample.thread})`;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const [file, perEvent] = args.filter((a) => !a.startsWith('--'));
  if (file === undefined) throw new Error('usage: node bench/perf-stages.ts <perf.data> [cpu µs per event] [--syscalls]');
  const all = samples(execFileSync('perf', ['script', '-i', file, '-F', 'comm,tid,ip,sym'], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] }));
  const counts = new Map<string, { user: number; kernel: number }>();
  for (const sample of all) {
    const stage = stageOf(sample);
    const count = counts.get(stage) ?? { user: 0, kernel: 0 };
    if (sample.frames.some((f) => f.startsWith('entry_SYSCALL'))) count.kernel += 1;
    else count.user += 1;
    counts.set(stage, count);
  }
  const share = (n: number): string => `${((100 * n) / all.length).toFixed(1).padStart(5)}%`;
  const micros = (n: number): string => (perEvent === undefined ? '' : `  ${((n / all.length) * Number(perEvent)).toFixed(1).padStart(6)} µs`);
  for (const [name, { user, kernel }] of [...counts].sort((a, b) => b[1].user + b[1].kernel - (a[1].user + a[1].kernel))) {
    const split = args.includes('--syscalls') ? `  (user ${share(user)}, system calls ${share(kernel)})` : '';
    process.stdout.write(`${share(user + kernel)}${micros(user + kernel)}  ${name}${split}\n`);
  }
  process.stdout.write(`${all.length} samples\n`);
}
