/** What every running bridge exposes, whichever its direction. */

export interface BridgeStats {
  /** Messages that crossed and were acknowledged on the far side. */
  forwarded: number;
  deadLettered: number;
  /** Publish or produce attempts that failed and were retried. */
  publishFailures: number;
  /** Times the RabbitMQ connection was re-established. */
  reconnects: number;
}

export interface RunningBridge {
  name: string;
  stats(): BridgeStats;
  stop(): Promise<void>;
}
