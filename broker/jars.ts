import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../core/config.ts';
import { LocalKafkaError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { mavenProfile } from './properties.ts';

/** Apache Kafka's jars, resolved from Maven Central once per version into a cache shared by every data dir. */

export interface JarSource {
  version: string;
  cacheDir: string;
}

export function libsDir(source: JarSource): string {
  return join(source.cacheDir, source.version, 'libs');
}

export function requireTool(command: string, args: string[], install: string): void {
  const result = spawnSync(command, args, { stdio: 'ignore' });
  if (result.error || result.status !== 0) {
    throw new LocalKafkaError(`\`${command}\` was not found, and the local Kafka broker needs it. Install ${install}, or set KAFKA_BROKERS to use an existing cluster.`);
  }
}

/** Resolves Kafka's jars into the cache unless a previous run completed it. */
export function ensureKafkaJars(source: JarSource, log: Logger): string {
  const libs = libsDir(source);
  const marker = join(libs, '.complete');
  if (existsSync(marker)) return libs;
  requireTool('java', ['-version'], 'Java 17 or newer (e.g. `apt-get install openjdk-17-jdk-headless`)');
  requireTool('mvn', ['-v'], 'Apache Maven (e.g. `apt-get install maven`)');
  log.info({ version: source.version, libs }, 'resolving Apache Kafka from Maven Central (first run only)');
  rmSync(libs, { recursive: true, force: true });
  mkdirSync(libs, { recursive: true });
  const result = spawnSync(
    'mvn',
    [
      '-q',
      '-B',
      '-f',
      join(PROJECT_ROOT, 'broker', 'pom.xml'),
      '-P',
      mavenProfile(source.version),
      'dependency:copy-dependencies',
      `-Dkafka.version=${source.version}`,
      `-DoutputDirectory=${libs}`,
      '-DincludeScope=runtime',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (result.status !== 0) {
    throw new LocalKafkaError(`mvn could not resolve Apache Kafka ${source.version}:\n${(result.stdout + result.stderr).trim().slice(-4000)}`);
  }
  writeFileSync(marker, `${new Date().toISOString()}\n`);
  return libs;
}
