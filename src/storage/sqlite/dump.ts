import { inject, injectable } from 'inversify';
import { contentKeyedTable, encodedBlockColumns, encodedListColumns, probeContentKeys, sqlDumpSpec, type Dialect, type DriverTable, type SqlDumpSpec } from '../shared/dump-columns.js';
import { DUMP_TABLES, type CopyProgress, type DumpRows, type DumpTable, type DumpTableName, type StoreDump } from '../tables/dump.js';
import type { Tx } from '../tables/unit-of-work.js';
import { SqlRoomScope, type KeyValue } from '../shared/sql-room-scope.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { autoincrementSequence, bool, nidList, parseNIDList, raiseAutoincrementSequence } from './values.js';

/** SQLite's encodings: flags as 0/1, NID lists as JSON text. */
const SQLITE: Dialect = {
  bool: { encode: bool, decode: (v) => v === 1 || v === true },
  nidList: { encode: nidList, decode: (v) => parseNIDList(String(v)) },
};

/**
 * Every logical table of a dump on SQLite: the shared columns (../shared/dump-columns.ts), each table's primary key,
 * and what SQLite adds. The order that matters (invites, redactions) lives in the rowid, which a dump carries as
 * `seq` and writes back as it was; AUTOINCREMENT keys (send-to-device positions, backup versions) likewise.
 */
const TABLES: { readonly [K in DumpTableName]: DriverTable<DumpRows[K]> } = {
  event_types: { key: ['event_type_nid'] },
  event_state_keys: { key: ['event_state_key_nid'] },
  rooms: { key: ['room_nid'] },
  events: { key: ['event_nid'] },
  event_json: { key: ['event_nid'] },
  state_blocks: { key: ['state_block_nid'], derived: encodedBlockColumns },
  state_snapshots: { key: ['state_snapshot_nid'], derived: encodedListColumns },
  membership: { key: ['room_nid', 'target_nid'] },
  previous_events: { key: ['previous_event_id', 'event_nid'] },
  invites: { key: ['rowid'], extraColumns: { rowid: ['seq', 'int'] } },
  redactions: { key: ['rowid'], extraColumns: { rowid: ['seq', 'int'] } },
  room_aliases: { key: ['alias'] },
  published: { key: ['room_id', 'appservice_id', 'network_id'] },
  reported_events: { key: ['id'] },
  user_room_keys: { key: ['user_nid', 'room_nid'] },
  transactions: { key: ['transaction_id', 'session_id', 'user_id'] },
  federation_blacklist: { key: ['server_name'] },
  device_keys: { key: ['user_id', 'device_id'] },
  one_time_keys: { key: ['user_id', 'device_id', 'algorithm', 'key_id'] },
  fallback_keys: { key: ['user_id', 'device_id', 'algorithm'] },
  key_changes: { key: ['user_id'] },
  cross_signing_keys: { key: ['user_id', 'key_type'] },
  cross_signing_sigs: { key: ['target_user_id', 'target_key_id', 'origin_user_id'] },
  stale_device_lists: { key: ['user_id'] },
  key_backup_versions: { key: ['version'] },
  key_backups: { key: ['user_id', 'version', 'room_id', 'session_id'] },
  send_to_device: { key: ['id'] },
  partition_offsets: { key: ['topic', 'partition'] },
};

const SPECS = Object.fromEntries(DUMP_TABLES.map((name) => [name, sqlDumpSpec(name, SQLITE, TABLES[name] as never)])) as
  { readonly [K in DumpTableName]: SqlDumpSpec<DumpRows[K]> };

/**
 * Counters and what they count. The event NID sequence is a row of roomserver_sequences; the AUTOINCREMENT
 * tables keep theirs in sqlite_sequence; key changes and send-to-device positions are max + 1 over their tables,
 * and stream IDs over a user's devices, so they follow the copied rows by themselves.
 */
const AUTOINCREMENT: Readonly<Record<string, string>> = {
  room_nid: 'roomserver_rooms', event_type_nid: 'roomserver_event_types', state_key_nid: 'roomserver_event_state_keys',
  state_block_nid: 'roomserver_state_block', state_snapshot_nid: 'roomserver_state_snapshots',
  key_backup_version: 'userapi_key_backup_versions', send_to_device_id: 'syncapi_send_to_device',
  reported_event_id: 'roomserver_reported_events',
};

/** Deletes rows of a dump table by their primary key, in `tx`. */
function deleteRows<K extends DumpTableName>(conn: SqliteConnection, tx: Tx, name: K, records: readonly DumpRows[K][]): Promise<void> {
  const spec = SPECS[name] as SqlDumpSpec<DumpRows[K]>;
  return conn.run(tx, (c) => {
    if (records.length === 0) return;
    const remove = c.stmt(`DELETE FROM ${spec.table} WHERE (${spec.key.join(', ')}) = (${spec.key.map(() => '?').join(', ')})`);
    for (const r of records) {
      const row = spec.toRow(r);
      remove.run(...spec.key.map((k) => row[k]));
    }
  });
}

/** One room's rows on SQLite: `column IN (json_each(?))`, which SQLite answers from the index leading with the column. */
@injectable()
export class SqliteRoomScope extends SqlRoomScope {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {
    super();
  }

  protected select<K extends DumpTableName>(tx: Tx, name: K, column: string, values: readonly KeyValue[]): Promise<DumpRows[K][]> {
    const spec = SPECS[name] as SqlDumpSpec<DumpRows[K]>;
    return this.conn.run(tx, (c) => (c.stmt(`SELECT ${spec.columns.join(', ')} FROM ${spec.table} WHERE ${column} IN (SELECT value FROM json_each(?))`)
      .all(JSON.stringify(values)) as Record<string, unknown>[]).map(spec.fromRow));
  }

  protected namedOutside(tx: Tx, roomNID: number, snapshotNIDs: readonly number[]): Promise<number[]> {
    return this.conn.run(tx, (c) => (c.stmt(`SELECT s.value AS nid FROM json_each(?) s
      WHERE EXISTS (SELECT 1 FROM roomserver_events e WHERE e.state_snapshot_nid = s.value AND e.room_nid <> ?)
         OR EXISTS (SELECT 1 FROM roomserver_rooms r WHERE r.state_snapshot_nid = s.value AND r.room_nid <> ?)`)
      .all(JSON.stringify(snapshotNIDs), roomNID, roomNID) as { nid: number }[]).map((r) => r.nid));
  }

  delete<K extends DumpTableName>(tx: Tx, name: K, rows: readonly DumpRows[K][]): Promise<void> {
    return deleteRows(this.conn, tx, name, rows);
  }
}

/** The dump of a SQLite store: keyset paging over each table's primary key, rows written with INSERT OR REPLACE. */
@injectable()
export class SqliteStoreDump implements StoreDump {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  table<K extends DumpTableName>(name: K): DumpTable<DumpRows[K]> {
    const spec = SPECS[name] as SqlDumpSpec<DumpRows[K]>;
    const conn = this.conn;
    const keyList = spec.key.join(', ');
    return {
      count: () => conn.run(conn.autocommit, (c) => (c.stmt(`SELECT count(*) AS n FROM ${spec.table}`).get() as { n: number }).n),
      read: (cursor, limit) => conn.run(conn.autocommit, (c) => {
        const after = cursor === undefined ? undefined : (JSON.parse(cursor) as unknown[]);
        const where = after ? `WHERE (${keyList}) > (${spec.key.map(() => '?').join(', ')})` : '';
        const rows = c.stmt(`SELECT ${spec.columns.join(', ')} FROM ${spec.table} ${where} ORDER BY ${keyList} LIMIT ?`)
          .all(...(after ?? []), limit) as Record<string, unknown>[];
        const last = rows.at(-1);
        return { rows: rows.map(spec.fromRow), next: rows.length === limit && last ? JSON.stringify(spec.key.map((k) => last[k])) : undefined };
      }),
      write: (records) => conn.transaction(async (tx) => {
        if (records.length === 0) return;
        const rows = records.map(spec.toRow);
        const keyed = contentKeyedTable(name);
        if (keyed) {
          await probeContentKeys(name, rows, (keys) => conn.run(tx, (c) => new Map((c.stmt(`SELECT content_key AS key, ${keyed.nidColumn} AS nid
            FROM ${keyed.table} WHERE content_key IN (SELECT value FROM json_each(?))`).all(JSON.stringify(keys)) as { key: number; nid: number }[])
            .map((r) => [r.key, r.nid]))));
        }
        await conn.run(tx, (c) => {
          const columns = Object.keys(rows[0]!);
          const insert = c.stmt(`INSERT OR REPLACE INTO ${spec.table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
          for (const row of rows) insert.run(...columns.map((col) => row[col]));
        });
      }),
      delete: (records) => conn.transaction((tx) => deleteRows(conn, tx, name, records)),
    };
  }

  async reclaimSpace(): Promise<{ done: string }> {
    return this.conn.run(this.conn.autocommit, (c) => {
      // The WAL first: VACUUM rewrites the main file, and pages still in the WAL would keep the old size on disk.
      c.db.pragma('wal_checkpoint(TRUNCATE)');
      c.db.exec('VACUUM');
      c.db.pragma('wal_checkpoint(TRUNCATE)');
      return { done: 'SQLite: VACUUM rewrote the database file without the deleted rows\' pages, and the WAL was truncated' };
    });
  }

  counters(): Promise<Record<string, number>> {
    return this.conn.run(this.conn.autocommit, (c) => {
      const out: Record<string, number> = {
        event_nid: (c.stmt("SELECT value FROM roomserver_sequences WHERE name = 'event_nid'").get() as { value: number }).value,
      };
      for (const [name, table] of Object.entries(AUTOINCREMENT)) {
        out[name] = autoincrementSequence(c.db, table);
      }
      out.key_change_id = (c.stmt('SELECT coalesce(max(change_id), 0) AS n FROM keyserver_key_changes').get() as { n: number }).n;
      return out;
    });
  }

  raiseCounters(counters: Readonly<Record<string, number>>): Promise<void> {
    return this.conn.transaction(async (tx) => this.conn.run(tx, (c) => {
      if (counters.event_nid !== undefined) {
        c.stmt("UPDATE roomserver_sequences SET value = max(value, ?) WHERE name = 'event_nid'").run(counters.event_nid);
      }
      for (const [name, table] of Object.entries(AUTOINCREMENT)) {
        const value = counters[name];
        if (value === undefined) continue;
        raiseAutoincrementSequence(c.db, table, value);
      }
    }));
  }

  readProgress(): Promise<CopyProgress | undefined> {
    return this.conn.run(this.conn.autocommit, (c) => {
      this.ensureProgressTable(c);
      const row = c.stmt("SELECT value FROM matrix_storage_copy WHERE name = 'progress'").get() as { value: string } | undefined;
      return row ? (JSON.parse(row.value) as CopyProgress) : undefined;
    });
  }

  writeProgress(progress: CopyProgress | undefined): Promise<void> {
    return this.conn.run(this.conn.autocommit, (c) => {
      this.ensureProgressTable(c);
      if (progress === undefined) c.stmt("DELETE FROM matrix_storage_copy WHERE name = 'progress'").run();
      else c.stmt("INSERT OR REPLACE INTO matrix_storage_copy (name, value) VALUES ('progress', ?)").run(JSON.stringify(progress));
    });
  }

  /** The copy's own bookkeeping, beside the migrations table (neither is part of the store's data). */
  private ensureProgressTable(c: SqliteConnection): void {
    c.db.exec('CREATE TABLE IF NOT EXISTS matrix_storage_copy (name TEXT PRIMARY KEY, value TEXT NOT NULL)');
  }
}
