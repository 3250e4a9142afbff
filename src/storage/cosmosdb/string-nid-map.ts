import { ConflictError } from '../../types/errors.js';
import { duplicate, notFound, unique } from '../shared/contracts.js';
import type { CosmosConnection, SequenceName } from './connection.js';

interface MappingDoc {
  s: string;
  nid: number;
}

/**
 * The shape event types and state keys share on Cosmos DB: two small immutable documents per mapping, each its own
 * logical partition so both directions are point reads: `<kind>|<string>` -> NID and `<kind>n|<NID>` -> string.
 * The NID side is written first; creating the string side is the commit point, and the loser of a race (409)
 * gets ConflictError, its unreferenced NID document removed.
 */
export class CosmosStringNIDMap<N extends number> {
  constructor(
    private readonly conn: CosmosConnection,
    private readonly what: string,
    private readonly kind: 'et' | 'sk',
    private readonly sequence: SequenceName,
  ) {}

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
    this.learn(value, nid);
    return nid;
  }

  async select(value: string): Promise<N> {
    const { id, pk } = this.forward(value);
    const doc = await this.conn.requests.read<MappingDoc>(`${this.what}.select`, id, pk);
    if (!doc) throw notFound(this.what, value);
    this.learn(value, doc.nid);
    return doc.nid as N;
  }

  async bulkSelectNIDs(values: readonly string[]): Promise<Map<string, N>> {
    const docs = (await this.conn.requests.readMany<MappingDoc>(`${this.what}.bulkSelect`, unique(values).map((v) => this.forward(v)))).filter((d) => d !== undefined);
    for (const d of docs) this.learn(d.s, d.nid);
    return new Map(docs.map((d) => [d.s, d.nid as N]));
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
}
