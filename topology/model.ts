import type { Schema } from 'avsc';

/** The topology as the platform uses it, after loading and cross-checking. */

export interface ValueSchema {
  /** Absolute path of the .avsc file. */
  file: string;
  /** Registry subject (TopicNameStrategy: `<topic>-value`). */
  subject: string;
  schema: Schema;
  /** The schema text as written to the registry. */
  text: string;
}

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  configs: Record<string, string>;
  valueSchema?: ValueSchema;
}

export interface RouteSpec {
  method: 'POST';
  path: string;
  topic: string;
  /** Field of the event whose value is the Kafka key. */
  key: string;
}

export type DeliveryMode = 'at-least-once';

export interface WorkerSpec {
  name: string;
  input: string;
  output: string;
  deadLetter: string;
  groupId: string;
  /** Absolute path of the module whose default export is the handler. */
  handler: string;
  delivery: DeliveryMode;
}

export interface Topology {
  /** Absolute path of the topology file. */
  file: string;
  topics: TopicSpec[];
  routes: RouteSpec[];
  workers: WorkerSpec[];
}

export function subjectFor(topic: string): string {
  return `${topic}-value`;
}

export function topicByName(topology: Topology, name: string): TopicSpec | undefined {
  return topology.topics.find((t) => t.name === name);
}
