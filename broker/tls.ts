import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { LocalKafkaError } from '../core/errors.ts';

/**
 * The local broker's TLS material, made once per data dir with openssl: a CA
 * (its certificate is what clients trust) and a broker certificate for the
 * listen address, 127.0.0.1 and localhost. EC P-256 keys: made in milliseconds.
 */

export interface BrokerTls {
  /** The CA certificate clients verify the broker with (ssl.ca.location). */
  caFile: string;
  /** The broker's PKCS#8 key and certificate in one PEM file (Kafka's PEM keystore). */
  keystoreFile: string;
}

function openssl(args: string[], cwd: string): void {
  const result = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (result.error) throw new LocalKafkaError('`openssl` was not found, and the SASL_SSL listener needs it to make its certificates. Install openssl, or unset SLUICE_KAFKA_SASL_SSL_PORT.');
  if (result.status !== 0) throw new LocalKafkaError(`openssl ${args[0]} failed: ${result.stderr.trim().slice(-2000)}`);
}

function subjectAltNames(host: string): string {
  const names = new Set([`IP:127.0.0.1`, 'DNS:localhost', `${isIP(host) ? 'IP' : 'DNS'}:${host}`]);
  return [...names].join(',');
}

/** Makes (first time) or finds the CA and broker certificate under `dir`/tls. */
export function ensureBrokerTls(dir: string, host: string): BrokerTls {
  const tls = join(dir, 'tls');
  const paths = { caFile: join(tls, 'ca.crt'), keystoreFile: join(tls, 'broker.pem') };
  if (existsSync(paths.keystoreFile)) return paths;
  // Made in a scratch folder and renamed, so an interrupted run leaves nothing half-written.
  const work = `${tls}.tmp`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true, mode: 0o700 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '3650', '-subj', '/CN=Sluice local Kafka CA'], work);
  openssl(['req', ...ec, '-keyout', 'broker.key', '-out', 'broker.csr', '-subj', `/CN=${host}`], work);
  writeFileSync(
    join(work, 'broker.ext'),
    [`subjectAltName=${subjectAltNames(host)}`, 'basicConstraints=CA:FALSE', 'keyUsage=digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth', ''].join('\n'),
  );
  openssl(['x509', '-req', '-in', 'broker.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'broker.crt', '-days', '825', '-extfile', 'broker.ext'], work);
  writeFileSync(join(work, 'broker.pem'), readFileSync(join(work, 'broker.key'), 'utf8') + readFileSync(join(work, 'broker.crt'), 'utf8'), { mode: 0o600 });
  for (const file of ['broker.key', 'broker.csr', 'broker.ext', 'ca.srl']) rmSync(join(work, file), { force: true });
  chmodSync(join(work, 'ca.key'), 0o600);
  rmSync(tls, { recursive: true, force: true });
  renameSync(work, tls);
  return paths;
}
