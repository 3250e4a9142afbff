import { conformanceSuite } from './conformance/index.js';
import { sqliteFile, sqliteMemory } from './support/drivers.js';

const mocha = { describe, it, beforeEach, afterEach };
conformanceSuite(mocha, sqliteMemory);
conformanceSuite(mocha, sqliteFile());
