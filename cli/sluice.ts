import { SluiceError } from '../core/errors.ts';
import { buildProgram, invokedCommand } from './program.ts';

async function main(argv: string[]): Promise<void> {
  try {
    await (await buildProgram(invokedCommand(argv.slice(2)))).parseAsync(argv);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('commander.')) {
      // commander already printed help or the usage error.
      process.exitCode = (error as { exitCode?: number }).exitCode ?? 1;
      return;
    }
    process.stderr.write(`sluice: ${error instanceof SluiceError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  }
}

await main(process.argv);
// Clients (kafkajs, timers) may hold the loop open after a command finished or failed.
process.exit(process.exitCode ?? 0);
