import type { Command } from 'commander';
import { addToAccessFile, loadAccessFile } from '../../access/file.ts';
import { isOutdatedHash } from '../../access/secrets.ts';
import { SluiceError } from '../../core/errors.ts';
import { configFrom } from '../flags.ts';

/** `sluice access add-key|add-user|check`: keeps the access file (SLUICE_ACCESS_FILE, or --file). */

function accessFileOf(command: Command, flags: { file?: string }): string {
  const file = flags.file ?? configFrom(command).accessFile;
  if (file === undefined) throw new SluiceError('SLUICE_ACCESS_FILE_MISSING', 'no access file: pass --file <path> or set SLUICE_ACCESS_FILE');
  return file;
}

const collect = (value: string, previous: string[]): string[] => [
  ...previous,
  ...value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean),
];

/**
 * Reads a password typed at a terminal without echoing it: the terminal is put
 * in raw mode (no echo, no line editing by the tty), so only this code sees the
 * keys. Enter ends it, Backspace deletes, Ctrl-C and Ctrl-D abort.
 */
export function promptHidden(input: NodeJS.ReadStream, output: NodeJS.WritableStream, prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let typed = '';
    const done = (error?: Error) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      output.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (chunk: Buffer | string) => {
      for (const char of String(chunk)) {
        if (char === '\r' || char === '\n') return done();
        if (char === '\u0003' || char === '\u0004') return done(new SluiceError('SLUICE_PASSWORD_ABORTED', 'no password given (aborted)'));
        if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
        else if (char >= ' ') typed += char;
      }
    };
    output.write(prompt);
    input.setRawMode(true);
    input.resume();
    input.on('data', onData);
  });
}

async function readPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin || !process.stdin.isTTY) {
    let text = '';
    for await (const chunk of process.stdin) text += String(chunk);
    return text.replace(/\r?\n$/, '');
  }
  return promptHidden(process.stdin, process.stderr, 'password: ');
}

export function register(program: Command): void {
  const access = program.command('access').description('principals, API keys and permissions in the access file (SLUICE_ACCESS_FILE)');
  const allowHelp = 'permission (repeatable or comma-separated): produce:<route>, read:<topic>, registry:read|write:<subject>, registry:admin, console:viewer|operator, metrics, *';

  access
    .command('add-key <name>')
    .description('create an API key for a principal (created if new) and print it once; only its hash is stored')
    .option('--allow <permission>', allowHelp, collect, [])
    .option('--file <path>', 'the access file (default: SLUICE_ACCESS_FILE)')
    .action(async (name: string, flags: { allow: string[]; file?: string }, command: Command) => {
      const file = accessFileOf(command, flags);
      const { key } = await addToAccessFile(file, { name, allow: flags.allow, key: true });
      process.stderr.write(`key for ${name} added to ${file}; it is shown this once, store it now:\n`);
      process.stdout.write(`${key!}\n`);
    });

  access
    .command('add-user <name>')
    .description('set the password of a principal (created if new) for basic auth and the console; read from stdin or a prompt')
    .option('--allow <permission>', allowHelp, collect, [])
    .option('--password-stdin', 'read the password from stdin')
    .option('--file <path>', 'the access file (default: SLUICE_ACCESS_FILE)')
    .action(async (name: string, flags: { allow: string[]; file?: string; passwordStdin?: boolean }, command: Command) => {
      const file = accessFileOf(command, flags);
      const password = await readPassword(flags.passwordStdin === true);
      if (password.length < 8) throw new SluiceError('SLUICE_PASSWORD_TOO_SHORT', 'the password needs at least 8 characters');
      await addToAccessFile(file, { name, allow: flags.allow, password });
      process.stderr.write(`password of ${name} set in ${file}\n`);
    });

  access
    .command('check')
    .description('validate the access file and list its principals and permissions')
    .option('--file <path>', 'the access file (default: SLUICE_ACCESS_FILE)')
    .action((flags: { file?: string }, command: Command) => {
      const file = accessFileOf(command, flags);
      for (const p of loadAccessFile(file).principals) {
        const grants = p.grants.map((g) => ('glob' in g ? `${g.kind}:${g.glob}` : g.kind === 'all' ? '*' : g.kind));
        const credentials = [p.keys.length > 0 ? `${p.keys.length} key(s)` : '', p.password ? 'password' : '', p.jwtSubject ? `jwt sub ${p.jwtSubject}` : ''].filter(Boolean);
        process.stdout.write(`${p.name}\t${credentials.join(', ') || 'no credentials'}\t${grants.join(' ') || 'nothing'}\n`);
        // The file is the operator's (often kept by config management): Sluice never rewrites it, it says what to renew.
        const outdated = [p.password !== undefined && isOutdatedHash(p.password) ? 'its password' : '', ...p.keys.filter((k) => isOutdatedHash(k.hash)).map((k) => `key ${k.id}`)].filter(Boolean);
        if (outdated.length > 0) process.stdout.write(`  ${p.name}: ${outdated.join(', ')} hashed at a lower scrypt cost than N=2^17: set again (add-user) or replace (add-key)\n`);
      }
    });
}
