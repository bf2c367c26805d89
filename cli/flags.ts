import type { Command } from 'commander';
import { trustConfiguredCa } from '../access/trust.ts';
import { loadConfig, type OPTIONS, type SluiceConfig } from '../core/config.ts';

/**
 * The root's flags, as every command reads them: here rather than in program.ts,
 * which imports the commands, so that commands and program do not import each other.
 */
interface GlobalFlags {
  brokers?: string;
  registryUrl?: string;
  topology?: string;
  logLevel?: string;
  discovery?: boolean;
  insecure?: boolean;
}

/** Whether `--discovery` was given: discovery then runs even without SLUICE_ETCD (on a local etcd). */
export function discoveryRequested(command: Command): boolean {
  return command.optsWithGlobals<GlobalFlags>().discovery === true;
}

/** The root's --brokers value, as given. */
export function brokersFlag(command: Command): string | undefined {
  return command.optsWithGlobals<GlobalFlags>().brokers;
}

export function configFrom(command: Command, extra: Partial<Record<keyof typeof OPTIONS, string>> = {}): SluiceConfig {
  const flags = command.optsWithGlobals<GlobalFlags>();
  const config = loadConfig(process.env, {
    ...(flags.brokers === undefined ? {} : { kafkaBrokers: flags.brokers }),
    ...(flags.registryUrl === undefined ? {} : { registryUrl: flags.registryUrl }),
    ...(flags.topology === undefined ? {} : { topologyFile: flags.topology }),
    ...(flags.logLevel === undefined ? {} : { logLevel: flags.logLevel }),
    ...(flags.insecure === true ? { insecure: 'true' } : {}),
    ...extra,
  });
  // Every HTTP client of the command (registry, console, tail) then trusts the configured CA.
  trustConfiguredCa(config);
  return config;
}
