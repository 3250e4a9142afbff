import { conformanceSuite } from './conformance/index.js';
import { postgres } from './support/drivers.js';
import { closeAdminPool } from './support/postgres.js';

/** Every conformance case on PostgreSQL (the run's own server, a fresh schema per case), as for every other driver. */
conformanceSuite({ describe, it, beforeEach, afterEach }, postgres);
after(closeAdminPool);
