import type { Command } from 'commander';
import { createLogger } from '../../core/logger.ts';
import { startConsole } from '../../console/server.ts';
import { closeOnSignal } from '../lifecycle.ts';
import { configFrom } from '../flags.ts';

export function register(program: Command): void {
  program
    .command('console')
    .description('serve the web console (topics, schemas, consumer groups and lag, live tail) on SLUICE_CONSOLE_PORT')
    .option('--port <port>', 'port to listen on (default: SLUICE_CONSOLE_PORT, 8082)')
    .option('--host <host>', 'address to listen on (default: SLUICE_CONSOLE_HOST, 127.0.0.1)')
    .action(async (flags: { port?: string; host?: string }, command: Command) => {
      const config = configFrom(command, {
        ...(flags.port === undefined ? {} : { consolePort: flags.port }),
        ...(flags.host === undefined ? {} : { consoleHost: flags.host }),
      });
      const log = createLogger(config, 'sluice');
      const running = await startConsole({ config, logger: log });
      log.info({ url: running.url }, 'Sluice console: open it in a browser; Ctrl-C stops it');
      process.exitCode = await closeOnSignal([{ name: 'console', close: () => running.close() }], log, config.shutdownTimeoutMs);
    });
}
