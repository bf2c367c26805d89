// @platformatic/kafka compiles all 38 of its option schemas with ajv when it is imported: 0.4-0.7 s of CPU, most
// of a short command's start-up, though a command calls a handful of them. The client's `ajv/dist/2020.js` is
// this module instead (bin/client-bundle.js: a resolve hook registered by bin/sluice.js before anything imports the
// client, or built into the client's bundle; node_modules untouched; the client itself is only ever imported by
// kafka/): the same Ajv2020, whose compile returns a validator that compiles its schema on first use and then
// behaves as ajv's own (result and `errors`).
import { Ajv2020 as Eager } from 'ajv/dist/2020.js';

export class Ajv2020 extends Eager {
  // Checking a schema against the JSON Schema meta-schema first compiles that meta-schema (most of the CPU of the
  // first validation, ~0.1 s). The client's schemas are its own constants, which its tests compile with the check:
  // validators of them behave the same without it. Without the check, and with no schema of the client naming a
  // $schema or $ref, the meta-schemas need not be added either (meta: false; 2.5 of the 3.5 ms of CPU the instance
  // took). A validator runs once per client call, on options: the code ajv generates for it is not worth optimizing
  // (optimize: false, a fifth less CPU to compile the consumer's group options on creating one, ~3 ms). The verdicts
  // and errors are ajv's either way: tests/unit/kafka-client-bundle.test.ts holds every validator to the package's.
  constructor(options) {
    super({ ...options, validateSchema: false, meta: false, code: { ...options?.code, optimize: false } });
  }

  compile(schema, meta) {
    let validate;
    const lazy = (data) => {
      validate ??= super.compile(schema, meta);
      const valid = validate(data);
      lazy.errors = validate.errors;
      return valid;
    };
    lazy.errors = null;
    lazy.schema = schema;
    return lazy;
  }
}
