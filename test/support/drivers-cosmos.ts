import { createStorage } from '../../src/index.js';
import { BUILT_IN_OPT_OUTS } from '../../src/io/conformance-run.js';
import type { DriverUnderTest } from '../conformance/harness.js';
import { emulatorConfig, startCosmosEmulator, type CosmosEmulator } from './cosmos-emulator.js';

let shared: Promise<CosmosEmulator> | undefined;

/** One emulator per test process, started on first use and closed when mocha ends the run. */
export function sharedEmulator(): Promise<CosmosEmulator> {
  if (!shared) {
    shared = startCosmosEmulator();
    after(async () => (await shared)?.close());
  }
  return shared;
}

/**
 * Cosmos DB through the real SDK against the in-process emulator: a fresh container per case (the emulator scans
 * a whole container on every query, so small containers keep the suite fast).
 */
export function cosmosEmulatorDriver(): DriverUnderTest {
  let n = 0;
  return {
    name: 'cosmosdb (emulator)',
    optOut: BUILT_IN_OPT_OUTS.cosmosdb,
    open: async (settings) => {
      const emulator = await sharedEmulator();
      return createStorage({ ...settings, ...emulatorConfig(emulator, 'conformance', `case${++n}`, 'tenant') });
    },
  };
}
