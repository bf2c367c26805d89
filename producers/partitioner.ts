// Moved to kafka/partitioner.ts (the seam owns partitioning); this re-export stays until consumers/runtime.ts imports it from there.
export { murmur2, partitionForKey } from '../kafka/partitioner.ts';
