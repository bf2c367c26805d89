/**
 * Per event id, what each side did with it: whether the ingress acknowledged it (HTTP 200), how often it reached
 * the input topic, and how often the worker's output holds it (read_committed). A duplicate then names its side:
 * twice on the input is the ingress writing one request twice; once on the input and twice on the output is the
 * worker writing one input twice. A refused request may still have reached the input (its acknowledgement came
 * after its deadline): counted apart, never as a loss or a duplicate.
 */

export interface Ledger {
  posted: number;
  acknowledged: number;
  refused: number;
  /** Acknowledged and never on the output; of them, those not even on the input (the ingress lost them). */
  lost: number;
  lostOnInput: number;
  /** Ids on the input more than once (the ingress wrote them twice), acknowledged or not. */
  duplicatedOnInput: string[];
  /** Ids on the output more often than on the input (the worker wrote them twice). */
  duplicatedByWorker: string[];
  /** Refused, and on the input all the same. */
  refusedButWritten: number;
}

export function account(outcomes: readonly { orderId: string; status: number }[], input: ReadonlyMap<string, number>, output: ReadonlyMap<string, number>): Ledger {
  const ledger: Ledger = { posted: outcomes.length, acknowledged: 0, refused: 0, lost: 0, lostOnInput: 0, duplicatedOnInput: [], duplicatedByWorker: [], refusedButWritten: 0 };
  for (const { orderId, status } of outcomes) {
    const onInput = input.get(orderId) ?? 0;
    const onOutput = output.get(orderId) ?? 0;
    if (status === 200) {
      ledger.acknowledged += 1;
      if (onOutput === 0) ledger.lost += 1;
      if (onInput === 0) ledger.lostOnInput += 1;
    } else {
      ledger.refused += 1;
      if (onInput > 0) ledger.refusedButWritten += 1;
    }
    if (onInput > 1) ledger.duplicatedOnInput.push(orderId);
    if (onInput >= 1 && onOutput > onInput) ledger.duplicatedByWorker.push(orderId);
  }
  return ledger;
}

/** The ledger as report figures: counts, and the duplicated ids themselves (a handful at most). */
export function ledgerFigures(ledger: Ledger): Record<string, unknown> {
  return {
    ...ledger,
    duplicated: ledger.duplicatedOnInput.length + ledger.duplicatedByWorker.length,
    duplicatedOnInput: ledger.duplicatedOnInput.length,
    duplicatedByWorker: ledger.duplicatedByWorker.length,
    ...(ledger.duplicatedOnInput.length + ledger.duplicatedByWorker.length > 0
      ? { duplicateIds: { ingress: ledger.duplicatedOnInput.slice(0, 20), worker: ledger.duplicatedByWorker.slice(0, 20) } }
      : {}),
  };
}
