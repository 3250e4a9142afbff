import { inject, injectable } from 'inversify';
import { CorruptionError } from '../../types/errors.js';
import { contentKeyedTable, encodedBlockColumns, encodedListColumns, probeContentKeys, sqlDumpSpec, type ColumnKind, type Dialect, type DriverTable, type SqlDumpSpec } from '../shared/dump-columns.js';
import { DUMP_TABLES, type CopyProgress, type DumpRows, type DumpTable, type DumpTableName, type StoreDump } from '../tables/dump.js';
import type { Tx } from '../tables/index.js';
import { SqlRoomScope, type KeyValue } from '../shared/sql-room-scope.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';
import { textHash } from './string-nid-map.js';
import { transactionKeyHash } from './transactions.js';

/**
 * The dump of a PostgreSQL store: the columns shared with SQLite (../shared/dump-columns.ts), the same rows. The
 * dialect differences, each kept visible:
 * - every column has its PostgreSQL type in the spec: a page is written as one INSERT ... SELECT FROM unnest(one
 *   array per column), so each table has one statement text (the connection prepares each text once per pooled
 *   connection and keeps it) and as many parameters as it has columns, whatever the page size (no 65535 limit);
 * - NID lists are bigint[], passed as array literals in a text[] (unnest cannot take a ragged array of arrays);
 * - the columns SQLite keeps in rowid or AUTOINCREMENT are identity columns or columns with an owned sequence here:
 *   the dump carries their values and the write supplies them (OVERRIDING SYSTEM VALUE where the column is
 *   GENERATED ALWAYS), then raises the sequence past them in the same transaction;
 * - unique text keys that can be long are stored with a SHA-256 column beside them (event types, state keys,
 *   transactions: see migrations.ts), computed here on write as the tables compute them.
 */

/** The PostgreSQL type of a column as the dump reads and writes it. */
type PgType = 'bigint' | 'integer' | 'smallint' | 'boolean' | 'text' | 'bytea' | 'bigint[]';

/** PostgreSQL's encodings: flags as boolean, NID lists as bigint[] (read back as arrays of strings or numbers). */
const POSTGRES: Dialect = {
  bool: { encode: (b) => b, decode: (v) => v === true },
  nidList: { encode: (nids) => nids, decode: (v) => (v as unknown[]).map(Number) },
};

/** Each kind's PostgreSQL type, unless a table names its own (the unnest arrays and cursor casts use them). */
const KIND_TYPES: Readonly<Record<ColumnKind, PgType>> = {
  int: 'bigint', text: 'text', nullableText: 'text', bool: 'boolean', nidList: 'bigint[]', blockEntries: 'bytea', blockList: 'bytea',
};

/** What PostgreSQL adds to a table's shared columns (../shared/dump-columns.ts). */
interface PgTable<R> extends DriverTable<R> {
  /** Types of the derived columns, and of columns whose type is not their kind's (a smallint, an integer). */
  readonly types?: Readonly<Record<string, PgType>>;
  /** The counter (see COUNTERS) whose sequence hands out a column written here: raised past the values written. */
  readonly counter?: CounterName;
  /** A GENERATED ALWAYS identity column the write supplies: it takes OVERRIDING SYSTEM VALUE and no UPDATE may set it. */
  readonly alwaysIdentity?: string;
}

/** A table's mapping on PostgreSQL: the shared spec with every column's type. */
interface Spec<R> extends SqlDumpSpec<R> {
  readonly types: Readonly<Record<string, PgType>>;
  readonly counter?: CounterName;
  readonly alwaysIdentity?: string;
}

/**
 * Each counter's sequence, by the column it hands out values to (resolved with pg_get_serial_sequence: identity
 * columns and the sequences migrations.ts makes OWNED BY a column alike). The first nine are the names every driver
 * reports; invite_seq and redaction_seq are PostgreSQL's own (SQLite's rowid needs no counter): the insertion order
 * a dump carries as `seq`. Room aliases' insertion column is not here: the dump does not carry it, so a write lets
 * the identity number the rows and nothing is left to raise.
 */
const COUNTERS = {
  event_nid: { table: 'roomserver_events', column: 'event_nid' },
  room_nid: { table: 'roomserver_rooms', column: 'room_nid' },
  event_type_nid: { table: 'roomserver_event_types', column: 'event_type_nid' },
  state_key_nid: { table: 'roomserver_event_state_keys', column: 'event_state_key_nid' },
  state_block_nid: { table: 'roomserver_state_block', column: 'state_block_nid' },
  state_snapshot_nid: { table: 'roomserver_state_snapshots', column: 'state_snapshot_nid' },
  key_backup_version: { table: 'userapi_key_backup_versions', column: 'version' },
  send_to_device_id: { table: 'syncapi_send_to_device', column: 'id' },
  key_change_id: { table: 'keyserver_key_changes', column: 'change_id' },
  invite_seq: { table: 'roomserver_invites', column: 'insertion' },
  redaction_seq: { table: 'roomserver_redactions', column: 'insertion' },
  reported_event_id: { table: 'roomserver_reported_events', column: 'id' },
} as const;
type CounterName = keyof typeof COUNTERS;

/**
 * Every logical table of a dump on PostgreSQL. The order that matters (invites, redactions, send-to-device positions)
 * lives in identity columns, which a dump carries as `seq` or `id` and writes back as it was.
 */
const TABLES: { readonly [K in DumpTableName]: PgTable<DumpRows[K]> } = {
  event_types: { key: ['event_type_nid'], counter: 'event_type_nid', types: { event_type_hash: 'bytea' }, derived: (x) => ({ event_type_hash: textHash(x.type) }) },
  event_state_keys: {
    key: ['event_state_key_nid'], counter: 'state_key_nid', types: { event_state_key_hash: 'bytea' }, derived: (x) => ({ event_state_key_hash: textHash(x.key) }),
  },
  rooms: { key: ['room_nid'], counter: 'room_nid' },
  events: { key: ['event_nid'], counter: 'event_nid' },
  event_json: { key: ['event_nid'] },
  state_blocks: { key: ['state_block_nid'], counter: 'state_block_nid', types: { content_key: 'integer', entry_count: 'bigint' }, derived: encodedBlockColumns },
  state_snapshots: { key: ['state_snapshot_nid'], counter: 'state_snapshot_nid', types: { content_key: 'integer' }, derived: encodedListColumns },
  membership: { key: ['room_nid', 'target_nid'] },
  previous_events: { key: ['previous_event_id', 'event_nid'] },
  // Paged by the primary key (the event ID), not by insertion, which no unique index covers; `seq` is insertion.
  invites: { key: ['invite_event_id'], counter: 'invite_seq', alwaysIdentity: 'insertion', extraColumns: { insertion: ['seq', 'int'] } },
  redactions: { key: ['redaction_event_id'], counter: 'redaction_seq', alwaysIdentity: 'insertion', extraColumns: { insertion: ['seq', 'int'] } },
  room_aliases: { key: ['alias'] },
  published: { key: ['room_id', 'appservice_id', 'network_id'] },
  reported_events: { key: ['id'], counter: 'reported_event_id', alwaysIdentity: 'id' },
  user_room_keys: { key: ['user_nid', 'room_nid'] },
  // Paged by the key hash, the primary key (the three parts themselves have no index).
  transactions: { key: ['transaction_key_hash'], types: { transaction_key_hash: 'bytea' }, derived: (x) => ({ transaction_key_hash: transactionKeyHash(x) }) },
  federation_blacklist: { key: ['server_name'] },
  device_keys: { key: ['user_id', 'device_id'] },
  one_time_keys: { key: ['user_id', 'device_id', 'algorithm', 'key_id'] },
  fallback_keys: { key: ['user_id', 'device_id', 'algorithm'] },
  key_changes: { key: ['user_id'], counter: 'key_change_id' },
  cross_signing_keys: { key: ['user_id', 'key_type'], types: { key_type: 'smallint' } },
  cross_signing_sigs: { key: ['target_user_id', 'target_key_id', 'origin_user_id'] },
  stale_device_lists: { key: ['user_id'] },
  key_backup_versions: { key: ['version'], counter: 'key_backup_version', alwaysIdentity: 'version' },
  key_backups: { key: ['user_id', 'version', 'room_id', 'session_id'] },
  send_to_device: { key: ['id'], counter: 'send_to_device_id', alwaysIdentity: 'id' },
  partition_offsets: { key: ['topic', 'partition'], types: { partition: 'integer' } },
};

function pgSpec<K extends DumpTableName>(name: K): Spec<DumpRows[K]> {
  const table = TABLES[name] as PgTable<DumpRows[K]>;
  const shared = sqlDumpSpec(name, POSTGRES, table);
  const types = { ...Object.fromEntries(Object.entries(shared.kinds).map(([column, kind]) => [column, KIND_TYPES[kind]])), ...table.types };
  return { ...shared, types, ...(table.counter ? { counter: table.counter } : {}), ...(table.alwaysIdentity ? { alwaysIdentity: table.alwaysIdentity } : {}) };
}

const SPECS = Object.fromEntries(DUMP_TABLES.map((name) => [name, pgSpec(name)])) as { readonly [K in DumpTableName]: Spec<DumpRows[K]> };

/** A key value as a cursor carries it (JSON): bytea as hex, the rest as read. */
const toCursor = (type: PgType, v: unknown): unknown => (type === 'bytea' ? (v as Buffer).toString('hex') : v);
const fromCursor = (type: PgType, v: unknown): unknown => (type === 'bytea' ? Buffer.from(v as string, 'hex') : v);

/** A column's values as the one array parameter unnest takes: NID lists as array literals, for a text[]. */
const columnParam = (type: PgType, values: unknown[]): unknown[] =>
  type === 'bigint[]' ? values.map((v) => `{${(v as number[]).join(',')}}`) : values;
const arrayType = (type: PgType): string => (type === 'bigint[]' ? 'text[]' : `${type}[]`);

/**
 * The INSERT one page of a table is written with (see the top of this file). A row already there takes the page's
 * values, except a GENERATED ALWAYS column, which no UPDATE may set: it keeps its value, which a page written again
 * carries unchanged anyway. In the page's order, so that an identity the dump does not carry (room aliases'
 * insertion) numbers the rows in the order given, as SQLite's rowid does.
 */
function insertStatement(spec: Spec<unknown>, columns: readonly string[]): string {
  const type = (c: string) => spec.types[c]!;
  const updatable = columns.filter((c) => !spec.key.includes(c) && c !== spec.alwaysIdentity);
  const onConflict = updatable.length === 0 ? 'DO NOTHING' : `DO UPDATE SET ${updatable.map((c) => `${c} = excluded.${c}`).join(', ')}`;
  return `INSERT INTO ${spec.table} (${columns.join(', ')}) ${spec.alwaysIdentity ? 'OVERRIDING SYSTEM VALUE ' : ''}
    SELECT ${columns.map((c) => (type(c) === 'bigint[]' ? `${c}::bigint[]` : c)).join(', ')}
    FROM unnest(${columns.map((c, i) => `$${i + 1}::${arrayType(type(c))}`).join(', ')}) WITH ORDINALITY AS t(${columns.join(', ')}, dump_position)
    ORDER BY dump_position
    ON CONFLICT (${spec.key.join(', ')}) ${onConflict}`;
}

/** The value a sequence has handed out last: last_value once nextval (or setval) was called, the one before otherwise. */
const HANDED_OUT = 'CASE WHEN is_called THEN last_value ELSE last_value - 1 END';

/** Deletes rows of a dump table by their primary key in `tx`: one statement, the keys as one array per key column. */
async function deleteRows<K extends DumpTableName>(conn: PostgresConnection, tx: Tx, name: K, records: readonly DumpRows[K][]): Promise<void> {
  if (records.length === 0) return;
  const spec = SPECS[name] as Spec<DumpRows[K]>;
  const rows = records.map(spec.toRow);
  await conn.query(tx,
    `DELETE FROM ${spec.table} WHERE (${spec.key.join(', ')}) IN (SELECT * FROM unnest(${spec.key.map((k, i) => `$${i + 1}::${arrayType(spec.types[k]!)}`).join(', ')}))`,
    spec.key.map((k) => columnParam(spec.types[k]!, rows.map((row) => row[k]))));
}

/** One room's rows on PostgreSQL: `column = ANY($1)`, which PostgreSQL answers from the index leading with the column. */
@injectable()
export class PostgresRoomScope extends SqlRoomScope {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {
    super();
  }

  protected async select<K extends DumpTableName>(tx: Tx, name: K, column: string, values: readonly KeyValue[]): Promise<DumpRows[K][]> {
    const spec = SPECS[name] as Spec<DumpRows[K]>;
    const r = await this.conn.query(tx, `SELECT ${spec.columns.join(', ')} FROM ${spec.table} WHERE ${column} = ANY($1::${arrayType(spec.types[column]!)})`, [values]);
    return r.rows.map(spec.fromRow);
  }

  protected async namedOutside(tx: Tx, roomNID: number, snapshotNIDs: readonly number[]): Promise<number[]> {
    const r = await this.conn.query<{ nid: string }>(tx, `SELECT s.nid FROM unnest($1::bigint[]) AS s(nid)
      WHERE EXISTS (SELECT 1 FROM roomserver_events e WHERE e.state_snapshot_nid = s.nid AND e.room_nid <> $2)
         OR EXISTS (SELECT 1 FROM roomserver_rooms r WHERE r.state_snapshot_nid = s.nid AND r.room_nid <> $2)`, [snapshotNIDs, roomNID]);
    return r.rows.map((row) => Number(row.nid));
  }

  delete<K extends DumpTableName>(tx: Tx, name: K, rows: readonly DumpRows[K][]): Promise<void> {
    return deleteRows(this.conn, tx, name, rows);
  }
}

/** The dump of a PostgreSQL store: keyset paging over each table's primary key, rows written with INSERT ... ON CONFLICT. */
@injectable()
export class PostgresStoreDump implements StoreDump {
  /** Each counter's sequence, schema-qualified and quoted as the catalog gives it; looked up once. */
  private sequenceNames: Promise<Record<CounterName, string>> | undefined;

  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  table<K extends DumpTableName>(name: K): DumpTable<DumpRows[K]> {
    const spec = SPECS[name] as Spec<DumpRows[K]>;
    const conn = this.conn;
    const keyList = spec.key.join(', ');
    const keyTypes = spec.key.map((k) => spec.types[k]!);
    return {
      count: async () => (await conn.query<{ n: number }>(conn.autocommit, `SELECT count(*) AS n FROM ${spec.table}`)).rows[0]!.n,
      read: async (cursor, limit) => {
        const after = cursor === undefined ? undefined : (JSON.parse(cursor) as unknown[]).map((v, i) => fromCursor(keyTypes[i]!, v));
        // A row comparison over the key's columns: PostgreSQL walks the primary key's index from the cursor on.
        const where = after ? `WHERE (${keyList}) > (${keyTypes.map((t, i) => `$${i + 1}::${t}`).join(', ')})` : '';
        const params = [...(after ?? []), limit];
        const r = await conn.query(conn.autocommit,
          `SELECT ${spec.columns.join(', ')} FROM ${spec.table} ${where} ORDER BY ${keyList} LIMIT $${params.length}`, params);
        const last = r.rows.at(-1);
        return {
          rows: r.rows.map(spec.fromRow),
          next: r.rows.length === limit && last ? JSON.stringify(spec.key.map((k, i) => toCursor(keyTypes[i]!, last[k]))) : undefined,
        };
      },
      write: async (records) => {
        if (records.length === 0) return;
        await conn.transaction(async (tx) => {
          const rows = records.map(spec.toRow);
          const keyed = contentKeyedTable(name);
          if (keyed) {
            await probeContentKeys(name, rows, async (keys) => new Map((await conn.query<{ key: number; nid: string }>(tx,
              `SELECT content_key AS key, ${keyed.nidColumn} AS nid FROM ${keyed.table} WHERE content_key = ANY($1::integer[])`, [keys]))
              .rows.map((r) => [r.key, Number(r.nid)])));
          }
          const columns = Object.keys(rows[0]!);
          await conn.query(tx, insertStatement(spec as Spec<unknown>, columns),
            columns.map((c) => columnParam(spec.types[c]!, rows.map((row) => row[c]))));
          // Raised here, not only by raiseCounters: a copy raises the counters it is given, and a source of another
          // driver has no counter for PostgreSQL's own sequences (invite_seq, redaction_seq).
          if (spec.counter) {
            const column = COUNTERS[spec.counter].column;
            await this.raise(tx, spec.counter, Math.max(...rows.map((row) => Number(row[column]))));
          }
        });
      },
      delete: async (records) => {
        if (records.length === 0) return;
        await conn.transaction((tx) => deleteRows(conn, tx, name, records));
      },
    };
  }

  async reclaimSpace(): Promise<{ done: string }> {
    // Plain VACUUM (not FULL): it takes no lock that stops readers or writers, and cannot run in a transaction.
    for (const spec of Object.values(SPECS) as Spec<unknown>[]) await this.conn.query(this.conn.autocommit, `VACUUM (ANALYZE) ${spec.table}`);
    return {
      done: 'PostgreSQL: VACUUM made the deleted rows\' space reusable by new rows of the same tables (autovacuum would have done the same ' +
        'within minutes); the files keep their size, which only VACUUM FULL (an exclusive lock on each table) or pg_repack gives back to the system',
    };
  }

  async counters(): Promise<Record<string, number>> {
    const sequences = Object.entries(await this.sequences());
    const r = await this.conn.query<{ name: string; value: number }>(this.conn.autocommit, sequences
      .map(([, seq], i) => `SELECT $${i + 1}::text AS name, ${HANDED_OUT} AS value FROM ${seq}`).join(' UNION ALL '), sequences.map(([name]) => name));
    return Object.fromEntries(r.rows.map((row) => [row.name, row.value]));
  }

  raiseCounters(counters: Readonly<Record<string, number>>): Promise<void> {
    return this.conn.transaction(async (tx) => {
      for (const [name, value] of Object.entries(counters)) {
        if (Object.hasOwn(COUNTERS, name)) await this.raise(tx, name as CounterName, value);
      }
    });
  }

  async readProgress(): Promise<CopyProgress | undefined> {
    // Reading never creates the table (a store opened only to be checked may not allow CREATE): no table, no record.
    const auto = this.conn.autocommit;
    const present = await this.conn.query<{ present: boolean }>(auto, "SELECT to_regclass('matrix_storage_copy') IS NOT NULL AS present");
    if (!present.rows[0]!.present) return undefined;
    const r = await this.conn.query<{ value: string }>(auto, "SELECT value FROM matrix_storage_copy WHERE name = 'progress'");
    return r.rows[0] ? (JSON.parse(r.rows[0].value) as CopyProgress) : undefined;
  }

  async writeProgress(progress: CopyProgress | undefined): Promise<void> {
    const auto = this.conn.autocommit;
    // The copy's own bookkeeping, beside the migrations table in the store's schema (unqualified names resolve
    // through the connection's search_path, as the migrations' do); store-stats.ts leaves both out of the fingerprint.
    await this.conn.query(auto, 'CREATE TABLE IF NOT EXISTS matrix_storage_copy (name text PRIMARY KEY, value text NOT NULL)');
    if (progress === undefined) await this.conn.query(auto, "DELETE FROM matrix_storage_copy WHERE name = 'progress'");
    else {
      await this.conn.query(auto, `INSERT INTO matrix_storage_copy (name, value) VALUES ('progress', $1)
        ON CONFLICT (name) DO UPDATE SET value = excluded.value`, [JSON.stringify(progress)]);
    }
  }

  /**
   * Raises a counter's sequence to at least `value` (never lowers it, and leaves it alone when it is there already).
   * setval is not transactional: a rolled-back write leaves the sequence raised, which only skips values.
   */
  private async raise(tx: Tx, name: CounterName, value: number): Promise<void> {
    const seq = (await this.sequences())[name];
    await this.conn.query(tx, `SELECT setval($1::regclass, $2) FROM ${seq} WHERE ${HANDED_OUT} < $2`, [seq, value]);
  }

  /** Sequence names come from the catalog, never from input, so they go into the SQL text as the catalog quotes them. */
  private sequences(): Promise<Record<CounterName, string>> {
    this.sequenceNames ??= (async () => {
      const entries = Object.entries(COUNTERS);
      const r = await this.conn.query<{ name: CounterName; seq: string | null }>(this.conn.autocommit, `SELECT name,
        pg_get_serial_sequence(t, c) AS seq FROM unnest($1::text[], $2::text[], $3::text[]) AS x(name, t, c)`,
      [entries.map(([name]) => name), entries.map(([, v]) => v.table), entries.map(([, v]) => v.column)]);
      const missing = r.rows.filter((row) => row.seq === null).map((row) => row.name);
      if (missing.length > 0) throw new CorruptionError(`the PostgreSQL schema has no sequence for the counters ${missing.join(', ')}`);
      return Object.fromEntries(r.rows.map((row) => [row.name, row.seq!])) as Record<CounterName, string>;
    })();
    this.sequenceNames.catch(() => { this.sequenceNames = undefined; });
    return this.sequenceNames;
  }
}
