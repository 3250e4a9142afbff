import { inject, injectable } from 'inversify';
import type { StateEntry } from '../../types/state.js';
import { decodeStateBlock, encodeStateBlock, hashBlockList } from '../shared/state-codec.js';
import type { CopyProgress, DumpRows, DumpTable, DumpTableName, StoreDump } from '../tables/dump.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { bool, nidList, parseNIDList } from './values.js';

/** How one logical table maps to its SQLite table: key columns (for paging), and row <-> record. */
interface Spec<R> {
  readonly table: string;
  /** The primary key's columns (the rowid, for tables whose order lives in it). */
  readonly key: readonly string[];
  /** The columns read, in SELECT order (the key's among them). */
  readonly columns: readonly string[];
  readonly fromRow: (row: Record<string, unknown>) => R;
  /** Column -> value for an INSERT (every column the table needs, the key's included). */
  readonly toRow: (record: R) => Record<string, unknown>;
}

const n = (v: unknown) => Number(v);
const s = (v: unknown) => String(v);
const b = (v: unknown) => v === 1 || v === true;

const entriesOf = (bytes: Buffer) => decodeStateBlock(bytes).map((e) => [e.eventTypeNID, e.eventStateKeyNID, e.eventNID] as const);
const entriesFrom = (entries: readonly (readonly [number, number, number])[]): StateEntry[] =>
  entries.map(([t, k, e]) => ({ eventTypeNID: t, eventStateKeyNID: k, eventNID: e }) as StateEntry);

/**
 * Every logical table of a dump on SQLite. The order that matters (invites, redactions, send-to-device positions)
 * lives in the rowid or the key, which a dump carries as `seq` or `id` and writes back as it was.
 */
const SPECS: { readonly [K in DumpTableName]: Spec<DumpRows[K]> } = {
  event_types: {
    table: 'roomserver_event_types', key: ['event_type_nid'], columns: ['event_type_nid', 'event_type'],
    fromRow: (r) => ({ nid: n(r.event_type_nid), type: s(r.event_type) }),
    toRow: (x) => ({ event_type_nid: x.nid, event_type: x.type }),
  },
  event_state_keys: {
    table: 'roomserver_event_state_keys', key: ['event_state_key_nid'], columns: ['event_state_key_nid', 'event_state_key'],
    fromRow: (r) => ({ nid: n(r.event_state_key_nid), key: s(r.event_state_key) }),
    toRow: (x) => ({ event_state_key_nid: x.nid, event_state_key: x.key }),
  },
  rooms: {
    table: 'roomserver_rooms', key: ['room_nid'],
    columns: ['room_nid', 'room_id', 'latest_event_nids', 'last_event_sent_nid', 'state_snapshot_nid', 'room_version'],
    fromRow: (r) => ({
      nid: n(r.room_nid), roomID: s(r.room_id), version: s(r.room_version), latest: parseNIDList(s(r.latest_event_nids)),
      lastSent: n(r.last_event_sent_nid), snapshot: n(r.state_snapshot_nid),
    }),
    toRow: (x) => ({
      room_nid: x.nid, room_id: x.roomID, latest_event_nids: nidList(x.latest), last_event_sent_nid: x.lastSent,
      state_snapshot_nid: x.snapshot, room_version: x.version,
    }),
  },
  events: {
    table: 'roomserver_events', key: ['event_nid'],
    columns: ['event_nid', 'room_nid', 'event_type_nid', 'event_state_key_nid', 'sent_to_output', 'state_snapshot_nid', 'depth', 'event_id', 'auth_event_nids', 'is_rejected'],
    fromRow: (r) => ({
      nid: n(r.event_nid), room: n(r.room_nid), type: n(r.event_type_nid), key: n(r.event_state_key_nid), eventID: s(r.event_id),
      auth: parseNIDList(s(r.auth_event_nids)), depth: n(r.depth), rejected: b(r.is_rejected), snapshot: n(r.state_snapshot_nid), sent: b(r.sent_to_output),
    }),
    toRow: (x) => ({
      event_nid: x.nid, room_nid: x.room, event_type_nid: x.type, event_state_key_nid: x.key, sent_to_output: bool(x.sent),
      state_snapshot_nid: x.snapshot, depth: x.depth, event_id: x.eventID, auth_event_nids: nidList(x.auth), is_rejected: bool(x.rejected),
    }),
  },
  event_json: {
    table: 'roomserver_event_json', key: ['event_nid'], columns: ['event_nid', 'event_json'],
    fromRow: (r) => ({ nid: n(r.event_nid), json: s(r.event_json) }),
    toRow: (x) => ({ event_nid: x.nid, event_json: x.json }),
  },
  state_blocks: {
    table: 'roomserver_state_block', key: ['state_block_nid'], columns: ['state_block_nid', 'entries'],
    fromRow: (r) => ({ nid: n(r.state_block_nid), entries: entriesOf(r.entries as Buffer) }),
    toRow: (x) => {
      const block = encodeStateBlock(entriesFrom(x.entries));
      return { state_block_nid: x.nid, state_block_hash: block.hash, entry_count: block.entries.length, entries: block.bytes };
    },
  },
  state_snapshots: {
    table: 'roomserver_state_snapshots', key: ['state_snapshot_nid'], columns: ['state_snapshot_nid', 'room_nid', 'state_block_nids'],
    fromRow: (r) => ({ nid: n(r.state_snapshot_nid), room: n(r.room_nid), blocks: parseNIDList(s(r.state_block_nids)) }),
    toRow: (x) => ({ state_snapshot_nid: x.nid, state_snapshot_hash: hashBlockList(x.blocks), room_nid: x.room, state_block_nids: nidList(x.blocks) }),
  },
  membership: {
    table: 'roomserver_membership', key: ['room_nid', 'target_nid'],
    columns: ['room_nid', 'target_nid', 'sender_nid', 'membership_nid', 'event_nid', 'target_local', 'forgotten'],
    fromRow: (r) => ({
      room: n(r.room_nid), target: n(r.target_nid), sender: n(r.sender_nid), membership: n(r.membership_nid), event: n(r.event_nid),
      local: b(r.target_local), forgotten: b(r.forgotten),
    }),
    toRow: (x) => ({
      room_nid: x.room, target_nid: x.target, sender_nid: x.sender, membership_nid: x.membership, event_nid: x.event,
      target_local: bool(x.local), forgotten: bool(x.forgotten),
    }),
  },
  previous_events: {
    table: 'roomserver_previous_events', key: ['previous_event_id', 'event_nid'], columns: ['previous_event_id', 'event_nid'],
    fromRow: (r) => ({ prev: s(r.previous_event_id), nid: n(r.event_nid) }),
    toRow: (x) => ({ previous_event_id: x.prev, event_nid: x.nid }),
  },
  invites: {
    table: 'roomserver_invites', key: ['rowid'],
    columns: ['rowid', 'invite_event_id', 'room_nid', 'target_nid', 'sender_nid', 'retired', 'invite_event_json'],
    fromRow: (r) => ({
      id: s(r.invite_event_id), room: n(r.room_nid), target: n(r.target_nid), sender: n(r.sender_nid), retired: b(r.retired),
      json: s(r.invite_event_json), seq: n(r.rowid),
    }),
    toRow: (x) => ({
      rowid: x.seq, invite_event_id: x.id, room_nid: x.room, target_nid: x.target, sender_nid: x.sender, retired: bool(x.retired), invite_event_json: x.json,
    }),
  },
  redactions: {
    table: 'roomserver_redactions', key: ['rowid'], columns: ['rowid', 'redaction_event_id', 'redacts_event_id', 'validated'],
    fromRow: (r) => ({ id: s(r.redaction_event_id), redacts: s(r.redacts_event_id), validated: b(r.validated), seq: n(r.rowid) }),
    toRow: (x) => ({ rowid: x.seq, redaction_event_id: x.id, redacts_event_id: x.redacts, validated: bool(x.validated) }),
  },
  room_aliases: {
    table: 'roomserver_room_aliases', key: ['alias'], columns: ['alias', 'room_id', 'creator_id'],
    fromRow: (r) => ({ alias: s(r.alias), roomID: s(r.room_id), creator: s(r.creator_id) }),
    toRow: (x) => ({ alias: x.alias, room_id: x.roomID, creator_id: x.creator }),
  },
  published: {
    table: 'roomserver_published', key: ['room_id'], columns: ['room_id', 'published'],
    fromRow: (r) => ({ roomID: s(r.room_id), published: b(r.published) }),
    toRow: (x) => ({ room_id: x.roomID, published: bool(x.published) }),
  },
  transactions: {
    table: 'roomserver_transactions', key: ['transaction_id', 'session_id', 'user_id'], columns: ['transaction_id', 'session_id', 'user_id', 'event_id'],
    fromRow: (r) => ({ transactionID: s(r.transaction_id), sessionID: n(r.session_id), userID: s(r.user_id), eventID: s(r.event_id) }),
    toRow: (x) => ({ transaction_id: x.transactionID, session_id: x.sessionID, user_id: x.userID, event_id: x.eventID }),
  },
  federation_blacklist: {
    table: 'federationsender_blacklist', key: ['server_name'], columns: ['server_name'],
    fromRow: (r) => ({ server: s(r.server_name) }),
    toRow: (x) => ({ server_name: x.server }),
  },
  device_keys: {
    table: 'keyserver_device_keys', key: ['user_id', 'device_id'], columns: ['user_id', 'device_id', 'ts_added_secs', 'key_json', 'stream_id', 'display_name'],
    fromRow: (r) => ({
      userID: s(r.user_id), deviceID: s(r.device_id), tsAdded: n(r.ts_added_secs), keyJSON: s(r.key_json), streamID: n(r.stream_id),
      displayName: r.display_name === null ? null : s(r.display_name),
    }),
    toRow: (x) => ({ user_id: x.userID, device_id: x.deviceID, ts_added_secs: x.tsAdded, key_json: x.keyJSON, stream_id: x.streamID, display_name: x.displayName }),
  },
  one_time_keys: {
    table: 'keyserver_one_time_keys', key: ['user_id', 'device_id', 'algorithm', 'key_id'],
    columns: ['user_id', 'device_id', 'algorithm', 'key_id', 'ts_added_secs', 'key_json'],
    fromRow: (r) => ({
      userID: s(r.user_id), deviceID: s(r.device_id), algorithm: s(r.algorithm), keyID: s(r.key_id), tsAdded: n(r.ts_added_secs), keyJSON: s(r.key_json),
    }),
    toRow: (x) => ({ user_id: x.userID, device_id: x.deviceID, algorithm: x.algorithm, key_id: x.keyID, ts_added_secs: x.tsAdded, key_json: x.keyJSON }),
  },
  key_changes: {
    table: 'keyserver_key_changes', key: ['user_id'], columns: ['user_id', 'change_id'],
    fromRow: (r) => ({ userID: s(r.user_id), changeID: n(r.change_id) }),
    toRow: (x) => ({ user_id: x.userID, change_id: x.changeID }),
  },
  cross_signing_keys: {
    table: 'keyserver_cross_signing_keys', key: ['user_id', 'key_type'], columns: ['user_id', 'key_type', 'key_data'],
    fromRow: (r) => ({ userID: s(r.user_id), keyType: n(r.key_type), keyData: s(r.key_data) }),
    toRow: (x) => ({ user_id: x.userID, key_type: x.keyType, key_data: x.keyData }),
  },
  cross_signing_sigs: {
    table: 'keyserver_cross_signing_sigs', key: ['target_user_id', 'target_key_id', 'origin_user_id'],
    columns: ['target_user_id', 'target_key_id', 'origin_user_id', 'origin_key_id', 'signature'],
    fromRow: (r) => ({
      originUserID: s(r.origin_user_id), originKeyID: s(r.origin_key_id), targetUserID: s(r.target_user_id), targetKeyID: s(r.target_key_id), signature: s(r.signature),
    }),
    toRow: (x) => ({
      origin_user_id: x.originUserID, origin_key_id: x.originKeyID, target_user_id: x.targetUserID, target_key_id: x.targetKeyID, signature: x.signature,
    }),
  },
  stale_device_lists: {
    table: 'keyserver_stale_device_lists', key: ['user_id'], columns: ['user_id', 'domain', 'is_stale', 'ts_added_secs'],
    fromRow: (r) => ({ userID: s(r.user_id), domain: s(r.domain), stale: b(r.is_stale), tsAdded: n(r.ts_added_secs) }),
    toRow: (x) => ({ user_id: x.userID, domain: x.domain, is_stale: bool(x.stale), ts_added_secs: x.tsAdded }),
  },
  key_backup_versions: {
    table: 'userapi_key_backup_versions', key: ['version'], columns: ['version', 'user_id', 'algorithm', 'auth_data', 'etag', 'deleted'],
    fromRow: (r) => ({ version: n(r.version), userID: s(r.user_id), algorithm: s(r.algorithm), authData: s(r.auth_data), etag: s(r.etag), deleted: b(r.deleted) }),
    toRow: (x) => ({ version: x.version, user_id: x.userID, algorithm: x.algorithm, auth_data: x.authData, etag: x.etag, deleted: bool(x.deleted) }),
  },
  key_backups: {
    table: 'userapi_key_backups', key: ['user_id', 'version', 'room_id', 'session_id'],
    columns: ['user_id', 'version', 'room_id', 'session_id', 'first_message_index', 'forwarded_count', 'is_verified', 'session_data'],
    fromRow: (r) => ({
      userID: s(r.user_id), version: s(r.version), roomID: s(r.room_id), sessionID: s(r.session_id), firstMessageIndex: n(r.first_message_index),
      forwardedCount: n(r.forwarded_count), verified: b(r.is_verified), sessionData: s(r.session_data),
    }),
    toRow: (x) => ({
      user_id: x.userID, version: x.version, room_id: x.roomID, session_id: x.sessionID, first_message_index: x.firstMessageIndex,
      forwarded_count: x.forwardedCount, is_verified: bool(x.verified), session_data: x.sessionData,
    }),
  },
  send_to_device: {
    table: 'syncapi_send_to_device', key: ['id'], columns: ['id', 'user_id', 'device_id', 'content'],
    fromRow: (r) => ({ id: n(r.id), userID: s(r.user_id), deviceID: s(r.device_id), content: s(r.content) }),
    toRow: (x) => ({ id: x.id, user_id: x.userID, device_id: x.deviceID, content: x.content }),
  },
  partition_offsets: {
    table: 'partition_offsets', key: ['topic', 'partition'], columns: ['topic', 'partition', 'partition_offset'],
    fromRow: (r) => ({ topic: s(r.topic), partition: n(r.partition), offset: n(r.partition_offset) }),
    toRow: (x) => ({ topic: x.topic, partition: x.partition, partition_offset: x.offset }),
  },
};

/**
 * Counters and what they count. The event NID sequence is a row of roomserver_sequences; the AUTOINCREMENT
 * tables keep theirs in sqlite_sequence; key changes and send-to-device positions are max + 1 over their tables,
 * and stream IDs over a user's devices, so they follow the copied rows by themselves.
 */
const AUTOINCREMENT: Readonly<Record<string, string>> = {
  room_nid: 'roomserver_rooms', event_type_nid: 'roomserver_event_types', state_key_nid: 'roomserver_event_state_keys',
  state_block_nid: 'roomserver_state_block', state_snapshot_nid: 'roomserver_state_snapshots',
  key_backup_version: 'userapi_key_backup_versions', send_to_device_id: 'syncapi_send_to_device',
};

/** The dump of a SQLite store: keyset paging over each table's primary key, rows written with INSERT OR REPLACE. */
@injectable()
export class SqliteStoreDump implements StoreDump {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  table<K extends DumpTableName>(name: K): DumpTable<DumpRows[K]> {
    const spec = SPECS[name] as Spec<DumpRows[K]>;
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
      write: (records) => conn.transaction(async (tx) => conn.run(tx, (c) => {
        if (records.length === 0) return;
        const columns = Object.keys(spec.toRow(records[0]!));
        const insert = c.stmt(`INSERT OR REPLACE INTO ${spec.table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
        for (const r of records) {
          const row = spec.toRow(r);
          insert.run(...columns.map((col) => row[col]));
        }
      })),
      delete: (records) => conn.transaction(async (tx) => conn.run(tx, (c) => {
        if (records.length === 0) return;
        const remove = c.stmt(`DELETE FROM ${spec.table} WHERE (${keyList}) = (${spec.key.map(() => '?').join(', ')})`);
        for (const r of records) {
          const row = spec.toRow(r);
          remove.run(...spec.key.map((k) => row[k]));
        }
      })),
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
        const row = c.stmt('SELECT seq FROM sqlite_sequence WHERE name = ?').get(table) as { seq: number } | undefined;
        out[name] = row?.seq ?? 0;
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
        // sqlite_sequence has a row per AUTOINCREMENT table once one row was ever inserted; make sure it has.
        c.stmt('INSERT INTO sqlite_sequence (name, seq) SELECT ?, 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)').run(table, table);
        c.stmt('UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?').run(value, table);
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
