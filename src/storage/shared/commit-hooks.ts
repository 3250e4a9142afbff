/**
 * Work to do once a transaction has committed, never if it rolls back: in-process caches learn what a
 * transaction wrote only when it is there for good. (A rolled-back insert can give its NID to the next insert on
 * SQLite, so a cache filled before commit could serve one state under another's NID.)
 */
export class CommitHooks {
  private hooks: (() => void)[] = [];

  add(hook: () => void): void {
    this.hooks.push(hook);
  }

  /** Runs the hooks once, after COMMIT. */
  run(): void {
    const hooks = this.hooks;
    this.hooks = [];
    for (const hook of hooks) hook();
  }
}
