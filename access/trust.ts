import { readFileSync } from 'node:fs';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import type { SluiceConfig } from '../core/config.ts';
import { ConfigError } from '../core/errors.ts';

// Apart from access/http.ts, which every command loads for this through cli/flags.ts: an ESM import of node:http
// loads Node's bundled undici (about a tenth of a `sluice tail`'s start-up), which no command needs before it serves.

/** Makes every HTTPS client of this process (fetch included) trust SLUICE_TLS_CA besides the system's CAs. */
export function trustConfiguredCa(config: Pick<SluiceConfig, 'tlsCa'>): void {
  if (config.tlsCa === undefined) return;
  let pem: string;
  try {
    pem = readFileSync(config.tlsCa, 'utf8');
  } catch (error) {
    throw new ConfigError('SLUICE_TLS_CA', `cannot read ${config.tlsCa}: ${(error as Error).message}`);
  }
  const extra = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (extra.length === 0) throw new ConfigError('SLUICE_TLS_CA', `${config.tlsCa} holds no PEM certificate`);
  setDefaultCACertificates([...getCACertificates('default'), ...extra]);
}
