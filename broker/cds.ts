import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * A class-data-sharing archive of Kafka's classes (JDK AppCDS), one per Kafka
 * version beside its jars: a broker started with it loads its classes mapped
 * from the archive instead of parsing and verifying ~90 jars, which cut the
 * CPU a start takes by about a third here. The first broker run of a version
 * records the archive when it exits cleanly (-XX:ArchiveClassesAtExit, into a
 * file of its own); the stop that saw it exit checks the file with the JVM and
 * only then makes it the version's archive, so a run killed mid-write leaves
 * nothing behind that a later start would trust.
 */

function archiveFile(libs: string): string {
  return join(dirname(libs), 'kafka.jsa');
}

/** Where a node's data dir notes the archive its running JVM will write at exit. */
function pendingNote(dataDir: string): string {
  return join(dataDir, 'cds-pending');
}

/** JVM flags for a broker start: use the archive, or record one at exit when there is none yet. */
export function cdsFlags(libs: string, dataDir: string): string[] {
  const archive = archiveFile(libs);
  // The JVM's notices about classes it cannot archive are of no use in stdout.log.
  const quiet = '-Xlog:cds=off,cds+dynamic=off';
  if (existsSync(archive)) return [`-XX:SharedArchiveFile=${archive}`, quiet];
  const pending = `${archive}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(pendingNote(dataDir), pending);
  return [`-XX:ArchiveClassesAtExit=${pending}`, quiet];
}

/** After the node's JVM has exited: adopt the archive it wrote if the JVM accepts it, else drop it. */
export function adoptArchive(dataDir: string): void {
  const note = pendingNote(dataDir);
  if (!existsSync(note)) return;
  const pending = readFileSync(note, 'utf8').trim();
  rmSync(note, { force: true });
  if (!existsSync(pending)) return;
  const archive = pending.replace(/\.[0-9a-f]+\.tmp$/, '');
  // -Xshare:on fails instead of running without the archive; the classpath must be the one it was made with.
  const check = existsSync(archive) ? undefined : spawnSync('java', [`-XX:SharedArchiveFile=${pending}`, '-Xshare:on', '-cp', `${join(dirname(archive), 'libs')}/*`, '-version'], { stdio: 'ignore' });
  if (check?.status === 0) renameSync(pending, archive);
  else rmSync(pending, { force: true });
}
