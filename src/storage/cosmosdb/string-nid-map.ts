import { ConcurrentUpdateError, ConflictError } from '../../types/errors.js';
import { preview } from '../../types/input.js';
import { duplicate, notFound, unique } from '../shared/contracts.js';
import type { Tx } from '../tables/index.js';
import type { CosmosConnection, SequenceName } from './connection.js';
import { Lru } from './lru.js';

interface MappingDoc {
  s: string;
  nid: number;
  /** Written in one request with its NID side (see `stage`): that side is not known to be there until looked at. */
  paired?: true;
}

/**
 * What a call leaves for the request that carries its writes (`writeStaged`): the mappings it made for itself
 * (`stage`), and the paired ones it found and must make sure of (`lookUpForCall`); each with who waits for it.
 */
interface CallMappings {
  readonly staged: { readonly nids: Map<string, number>; readonly settle: (error?: unknown) => void }[];
  readonly unsure: { readonly docs: MappingDoc[]; readonly settle: (error?: unknown) => void }[];
}

/** A promise and what settles it (its rejection handled: whoever awaits it still sees it). */
function settlement(): { settle: (error?: unknown) => void; settled: Promise<void> } {
  let settle!: (error?: unknown) => void;
  const settled = new Promise<void>((resolve, reject) => { settle = (e) => (e === undefined ? resolve() : reject(e)); });
  settled.catch(() => {});
  return { settle, settled };
}

/**
 * The shape event types and state keys share on Cosmos DB: two small immutable documents per mapping, each its own
 * logical partition so both directions are point reads: `<kind>|<string>` -> NID and `<kind>n|<NID>` -> string.
 * The NID side is written first; creating the string side is the commit point, and the loser of a race (409)
 * gets ConflictError, its unreferenced NID document removed.
 *
 * The input path makes its new mappings in one request with its other writes instead (`stage`, `writeStaged`):
 * both sides at once, the string side marked `paired`. A crash between the two leaves a string side whose NID side
 * is missing, so whoever takes a NID from a paired string side makes sure of the other side first (`confirm`), once
 * per process; nothing names a NID before that.
 */
export class CosmosStringNIDMap<N extends number> {
  constructor(
    private readonly conn: CosmosConnection,
    private readonly what: string,
    private readonly kind: 'et' | 'sk',
    private readonly sequence: SequenceName,
  ) {}

  /** What calls left for writeStaged, by call. */
  private readonly calls = new WeakMap<object, CallMappings>();
  /** NIDs whose NID side this process wrote or saw: their paired string sides need no look (see `confirm`). */
  private readonly confirmed = new Lru<number, true>(200_000);

  /** Remembers mappings this process saw, for the state keys (see CosmosConnection.stateKeyNames). */
  private learn(value: string, nid: number): void {
    if (this.kind === 'sk') this.conn.stateKeyNames.set(nid, value);
  }

  private forward(value: string) {
    return { id: this.kind, pk: this.conn.pk(this.kind, value) };
  }

  private reverse(nid: number) {
    return { id: `${this.kind}n`, pk: this.conn.pk(`${this.kind}n`, nid) };
  }

  /** Writes a preassigned mapping (idempotent). */
  async seed(value: string, nid: N): Promise<void> {
    await this.conn.requests.upsert(`${this.what}.seed`, { ...this.reverse(nid), k: `${this.kind}n`, s: value, nid });
    await this.conn.requests.upsert(`${this.what}.seed`, { ...this.forward(value), k: this.kind, s: value, nid });
  }

  async insert(value: string): Promise<N> {
    const nid = (await this.conn.sequence(this.sequence).nextValue()) as N;
    const r = this.conn.requests;
    await r.create(`${this.what}.insert`, { ...this.reverse(nid), k: `${this.kind}n`, s: value, nid });
    if (!(await r.create(`${this.what}.insert`, { ...this.forward(value), k: this.kind, s: value, nid }))) {
      const winner = await r.read<MappingDoc>(`${this.what}.insert`, this.forward(value).id, this.forward(value).pk);
      // A retry after an ambiguous timeout finds its own write: that is a success, not a duplicate.
      if (winner?.nid === nid) {
        this.learn(value, nid);
        return nid;
      }
      const orphan = this.reverse(nid);
      await r.delete(`${this.what}.insert`, orphan.id, orphan.pk);
      throw duplicate(this.what, value);
    }
    this.confirmed.set(nid, true);
    this.learn(value, nid);
    return nid;
  }

  async select(value: string): Promise<N> {
    const { id, pk } = this.forward(value);
    const doc = await this.conn.requests.read<MappingDoc>(`${this.what}.select`, id, pk);
    if (!doc) throw notFound(this.what, value);
    await this.confirm([doc]);
    this.learn(value, doc.nid);
    return doc.nid as N;
  }

  async bulkSelectNIDs(values: readonly string[]): Promise<Map<string, N>> {
    const docs = await this.readForward(values);
    await this.confirm(docs);
    for (const d of docs) this.learn(d.s, d.nid);
    return new Map(docs.map((d) => [d.s, d.nid as N]));
  }

  private async readForward(values: readonly string[]): Promise<MappingDoc[]> {
    return (await this.conn.requests.readMany<MappingDoc>(`${this.what}.bulkSelect`, unique(values).map((v) => this.forward(v)))).filter((d) => d !== undefined);
  }

  /**
   * bulkSelectNIDs for a call that writes with its staged mappings: the paired string sides it finds are made sure
   * of by `writeStaged`, in the same request as the call's writes, rather than now; `settled` once they are.
   */
  async lookUpForCall(tx: Tx, values: readonly string[]): Promise<{ nids: Map<string, N>; settled: Promise<void> }> {
    const docs = await this.readForward(values);
    for (const d of docs) this.learn(d.s, d.nid);
    const nids = new Map(docs.map((d) => [d.s, d.nid as N]));
    const unsure = docs.filter((d) => d.paired && !this.confirmed.get(d.nid));
    if (unsure.length === 0) return { nids, settled: Promise.resolve() };
    const { settle, settled } = settlement();
    this.callOf(tx).unsure.push({ docs: unsure, settle });
    return { nids, settled };
  }

  /** The known values' NIDs, and new ones for the others (the insert's assign pattern, value by value). */
  async assign(values: readonly string[]): Promise<Map<string, N>> {
    const out = await this.bulkSelectNIDs(values);
    for (const v of unique(values)) {
      if (out.has(v)) continue;
      try {
        out.set(v, await this.insert(v));
      } catch (e) {
        if (!(e instanceof ConflictError)) throw e;
        out.set(v, await this.select(v));
      }
    }
    return out;
  }

  async bulkSelectStrings(nids: readonly N[]): Promise<Map<N, string>> {
    const docs = (await this.conn.requests.readMany<MappingDoc>(`${this.what}.bulkSelect`, unique(nids).map((n) => this.reverse(n)))).filter((d) => d !== undefined);
    for (const d of docs) this.learn(d.s, d.nid);
    return new Map(docs.map((d) => [d.nid as N, d.s]));
  }

  /**
   * NIDs for values a call found absent, from this process's range (no request), whose mappings are written with
   * the call's other writes by `writeStaged`; `written` settles once they are (never, if the call writes nothing).
   */
  async stage(tx: Tx, values: readonly string[]): Promise<{ nids: Map<string, N>; written: Promise<void> }> {
    const nids = new Map<string, N>();
    for (const v of unique(values)) nids.set(v, (await this.conn.sequence(this.sequence).nextValue()) as N);
    // The call's other writes (a membership's user ID) name the value before it is stored: NIDs never change hands.
    for (const [v, nid] of nids) this.learn(v, nid);
    const { settle, settled: written } = settlement();
    this.callOf(tx).staged.push({ nids, settle });
    return { nids, written };
  }

  private callOf(tx: Tx): CallMappings {
    let call = this.calls.get(tx as object);
    if (!call) this.calls.set(tx as object, call = { staged: [], unsure: [] });
    return call;
  }

  /** The NIDs staged for the call and not written yet. */
  stagedNIDs(tx: Tx): Set<number> {
    return new Set((this.calls.get(tx as object)?.staged ?? []).flatMap((c) => [...c.nids.values()]));
  }

  /**
   * Writes the call's staged mappings, both sides of each at once, and makes sure of the paired ones it found (all
   * issued in this turn, so they share a bulk request with the call's other writes of the moment). A value another writer mapped meanwhile fails the call with
   * ConcurrentUpdateError: it starts again and finds that mapping.
   */
  async writeStaged(tx: Tx): Promise<void> {
    const call = this.calls.get(tx as object);
    if (!call) return;
    this.calls.delete(tx as object);
    const r = this.conn.requests;
    const outcomes = await Promise.allSettled([...call.unsure.map(async ({ docs, settle }) => {
      try {
        await this.confirm(docs);
        settle();
      } catch (e) {
        settle(e);
        throw e;
      }
    }), ...call.staged.map(async ({ nids, settle }) => {
      const done = await Promise.allSettled([...nids].map(async ([value, nid]) => {
        const [, made] = await Promise.all([
          r.create(`${this.what}.insert`, { ...this.reverse(nid), k: `${this.kind}n`, s: value, nid }),
          r.create(`${this.what}.insert`, { ...this.forward(value), k: this.kind, s: value, nid, paired: true }),
        ]);
        if (!made) {
          const winner = await r.read<MappingDoc>(`${this.what}.insert`, this.forward(value).id, this.forward(value).pk);
          // A retry after an ambiguous timeout finds its own write: that is a success.
          if (winner?.nid !== nid) {
            const orphan = this.reverse(nid);
            await r.delete(`${this.what}.insert`, orphan.id, orphan.pk).catch(() => {});
            throw new ConcurrentUpdateError(`${this.what} ${preview(value)} was mapped by another writer meanwhile`);
          }
        }
        this.confirmed.set(nid, true);
        this.learn(value, nid);
      }));
      const failed = done.find((d) => d.status === 'rejected');
      settle(failed ? failed.reason ?? new Error('failed') : undefined);
      if (failed) throw failed.reason;
    })]);
    const failed = outcomes.find((o) => o.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * Makes sure the NID side of paired string sides is stored (see the class), writing any that a crash left out:
   * one bulk read, the first time this process takes each such NID.
   */
  private async confirm(docs: readonly MappingDoc[]): Promise<void> {
    const unsure = docs.filter((d) => d.paired && !this.confirmed.get(d.nid));
    if (unsure.length === 0) return;
    const r = this.conn.requests;
    const found = await r.readMany<MappingDoc>(`${this.what}.confirm`, unsure.map((d) => this.reverse(d.nid)));
    const missing = unsure.filter((_, i) => found[i] === undefined);
    // Identical to what the writer that crashed meant to write: a create that finds it written meanwhile is fine.
    await Promise.all(missing.map((d) => r.create(`${this.what}.confirm`, { ...this.reverse(d.nid), k: `${this.kind}n`, s: d.s, nid: d.nid })));
    for (const d of unsure) this.confirmed.set(d.nid, true);
  }
}
