import type { Storage } from '../../src/index.js';

/**
 * The conformance suite takes the test framework's functions (mocha's by default, or any with the same shape)
 * and a driver under test, as Keyv's test suite does: nothing here imports mocha, so another driver's repository
 * can run the cases with its own setup.
 */
export interface TestFramework {
  describe(title: string, fn: () => void): void;
  it(title: string, fn: (this: { skip(): void; timeout(ms: number): void }) => Promise<void> | void): void;
  beforeEach(fn: () => Promise<void> | void): void;
  afterEach(fn: () => Promise<void> | void): void;
}

export interface DriverUnderTest {
  /** Shown in test titles, e.g. "sqlite (memory)". */
  readonly name: string;
  /**
   * A fresh, empty, migrated store; called once per case. `settings` are config keys the suite needs (the
   * homeserver's server_name) for the driver to merge into its own config.
   */
  open(settings: SuiteSettings): Promise<Storage>;
  /**
   * Cases this driver does not run, by title (as passed to `test`), each with the reason the run prints.
   * Only for a capability the engine lacks, never to hide a failure.
   */
  readonly optOut?: Readonly<Record<string, string>>;
}

/** Config keys every store the suite opens must have. */
export interface SuiteSettings {
  readonly server_name: string;
  /** Set by the cases that need another state resolver than the default (`none`: conflicts are refused). */
  readonly state?: { readonly resolver?: 'builtin' | 'none' };
}

/** The suite's homeserver: users on example.org are local. */
export const SUITE_SETTINGS: SuiteSettings = { server_name: 'example.org' };

/** What each case gets: a fresh store, opened before and closed after it. */
export interface CaseContext {
  readonly storage: Storage;
}

/**
 * Declares a group of cases that each run against a fresh store. `test(title, fn)` registers one case, or,
 * when the driver opted out of it, a skipped case whose title carries the reason.
 */
export function group(
  fw: TestFramework, driver: DriverUnderTest, title: string,
  body: (test: (caseTitle: string, fn: (ctx: CaseContext) => Promise<void>) => void) => void,
): void {
  fw.describe(title, () => {
    let storage: Storage | undefined;
    fw.beforeEach(async () => {
      storage = await driver.open(SUITE_SETTINGS);
    });
    fw.afterEach(async () => {
      await storage?.close();
      storage = undefined;
    });
    body((caseTitle, fn) => {
      const reason = driver.optOut?.[caseTitle];
      if (reason !== undefined) {
        fw.it(`${caseTitle} [opted out by ${driver.name}: ${reason}]`, function () {
          console.log(`    opt-out (${driver.name}): ${caseTitle}: ${reason}`);
          this.skip();
        });
        return;
      }
      fw.it(caseTitle, async () => {
        if (!storage) throw new Error('the store did not open (see the beforeEach failure)');
        await fn({ storage });
      });
    });
  });
}
