import type Database from 'better-sqlite3';
import { PREASSIGNED_EVENT_TYPES } from '../../types/nids.js';
import type { MigrationProgress } from '../../di/driver.js';
import { probeSync } from '../shared/content-keys.js';
import { contentKey, decodeBlockList, encodeBlockList } from '../shared/state-codec.js';
import { autoincrementSequence, raiseAutoincrementSequence } from './values.js';

/**
 * The SQLite schema, as an append-only list of versioned migrations. Never edit a migration that has shipped:
 * add the next one. Each runs in its own transaction and is recorded in matrix_storage_migrations, so opening a
 * store twice, or from two processes at once, applies each exactly once.
 *
 * Dialect notes (PostgreSQL in ../postgres/migrations.ts): NID lists are JSON text here and bigint[] there
 * (a snapshot's block list is the shared binary encoding on both since version 4); binary columns are BLOB here
 * and bytea there; booleans are 0/1 here.
 */
interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  /** Work SQL alone cannot do (binary encodings), run after `sql` in the same transaction. */
  readonly run?: (db: Database.Database) => void;
}

const PAGE = 1000;

/** Rows of a table in primary key order, a page at a time (a statement may not write while another iterates). */
function* pages<R>(db: Database.Database, sql: string): Generator<R[]> {
  const page = db.prepare(sql);
  for (let after = 0; ;) {
    const rows = page.all(after, PAGE) as (R & { nid: number })[];
    if (rows.length === 0) return;
    yield rows;
    after = rows.at(-1)!.nid;
  }
}

/**
 * Version 4: the compact state layout. Each block and snapshot row is rewritten with its 32-bit content key
 * (probing past collisions, rows taken in NID order as they were first stored), and each snapshot's block list in
 * the binary encoding; the NIDs and each table's AUTOINCREMENT counter are kept.
 */
function compactStateLayout(db: Database.Database): void {
  const counters = {
    roomserver_state_block: autoincrementSequence(db, 'roomserver_state_block'),
    roomserver_state_snapshots: autoincrementSequence(db, 'roomserver_state_snapshots'),
  };
  const insertBlock = db.prepare(`INSERT INTO roomserver_state_block_v4 (state_block_nid, content_key, entry_count, entries)
    VALUES (?, ?, ?, ?) ON CONFLICT (content_key) DO NOTHING`);
  for (const rows of pages<{ nid: number; count: number; entries: Buffer }>(db, `SELECT state_block_nid AS nid, entry_count AS count, entries
    FROM roomserver_state_block WHERE state_block_nid > ? ORDER BY state_block_nid LIMIT ?`)) {
    // The old rows are unique by their 32-byte hash, so a key already taken always holds other content.
    for (const r of rows) probeSync('state block', contentKey(r.entries), (key) => (insertBlock.run(r.nid, key, r.count, r.entries).changes === 1 ? r.nid : undefined));
  }
  const insertSnapshot = db.prepare(`INSERT INTO roomserver_state_snapshots_v4 (state_snapshot_nid, content_key, room_nid, block_list)
    VALUES (?, ?, ?, ?) ON CONFLICT (content_key) DO NOTHING`);
  for (const rows of pages<{ nid: number; room: number; blocks: string }>(db, `SELECT state_snapshot_nid AS nid, room_nid AS room,
    state_block_nids AS blocks FROM roomserver_state_snapshots WHERE state_snapshot_nid > ? ORDER BY state_snapshot_nid LIMIT ?`)) {
    for (const r of rows) {
      const list = encodeBlockList(JSON.parse(r.blocks) as number[]);
      probeSync('state snapshot', contentKey(list), (key) => (insertSnapshot.run(r.nid, key, r.room, list).changes === 1 ? r.nid : undefined));
    }
  }
  db.exec(`DROP TABLE roomserver_state_block;
    DROP TABLE roomserver_state_snapshots;
    ALTER TABLE roomserver_state_block_v4 RENAME TO roomserver_state_block;
    ALTER TABLE roomserver_state_snapshots_v4 RENAME TO roomserver_state_snapshots;`);
  // A purge may have deleted the highest NIDs: the counters go on from where they were, not from the rows left.
  for (const [table, seq] of Object.entries(counters)) raiseAutoincrementSequence(db, table, seq);
}

/**
 * Version 8: deletes the state blocks no snapshot names. Earlier builds wrote the delta block of a state that a
 * merge then folded into a bigger block; named by nothing, it belongs to no room a purge can find it through.
 */
function deleteUnnamedBlocks(db: Database.Database): void {
  const named = new Set<number>();
  for (const rows of pages<{ nid: number; list: Uint8Array }>(db,
    'SELECT state_snapshot_nid AS nid, block_list AS list FROM roomserver_state_snapshots WHERE state_snapshot_nid > ? ORDER BY state_snapshot_nid LIMIT ?')) {
    for (const r of rows) for (const b of decodeBlockList(r.list)) named.add(b);
  }
  const remove = db.prepare('DELETE FROM roomserver_state_block WHERE state_block_nid = ?');
  const unnamed: number[] = [];
  for (const rows of pages<{ nid: number }>(db, 'SELECT state_block_nid AS nid FROM roomserver_state_block WHERE state_block_nid > ? ORDER BY state_block_nid LIMIT ?')) {
    for (const r of rows) if (!named.has(r.nid)) unnamed.push(r.nid);
  }
  for (const nid of unnamed) remove.run(nid);
}

const seedEventTypes = PREASSIGNED_EVENT_TYPES.map(([nid, type]) => `(${nid}, '${type}')`).join(', ');

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'room server tables',
    sql: `
      CREATE TABLE roomserver_sequences (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
      );
      INSERT INTO roomserver_sequences (name, value) VALUES ('event_nid', 0) ON CONFLICT DO NOTHING;

      CREATE TABLE roomserver_event_types (
        event_type_nid INTEGER PRIMARY KEY AUTOINCREMENT,
        event_type TEXT NOT NULL UNIQUE
      );
      INSERT INTO roomserver_event_types (event_type_nid, event_type) VALUES ${seedEventTypes} ON CONFLICT DO NOTHING;

      CREATE TABLE roomserver_event_state_keys (
        event_state_key_nid INTEGER PRIMARY KEY AUTOINCREMENT,
        event_state_key TEXT NOT NULL UNIQUE
      );
      INSERT INTO roomserver_event_state_keys (event_state_key_nid, event_state_key) VALUES (1, '') ON CONFLICT DO NOTHING;

      CREATE TABLE roomserver_events (
        event_nid INTEGER PRIMARY KEY,
        room_nid INTEGER NOT NULL,
        event_type_nid INTEGER NOT NULL,
        event_state_key_nid INTEGER NOT NULL,
        sent_to_output INTEGER NOT NULL DEFAULT 0,
        state_snapshot_nid INTEGER NOT NULL DEFAULT 0,
        depth INTEGER NOT NULL,
        event_id TEXT NOT NULL UNIQUE,
        auth_event_nids TEXT NOT NULL DEFAULT '[]',
        is_rejected INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX roomserver_events_room_type ON roomserver_events (room_nid, event_type_nid);

      CREATE TABLE roomserver_event_json (
        event_nid INTEGER PRIMARY KEY,
        event_json TEXT NOT NULL
      );

      CREATE TABLE roomserver_rooms (
        room_nid INTEGER PRIMARY KEY AUTOINCREMENT,
        room_id TEXT NOT NULL UNIQUE,
        latest_event_nids TEXT NOT NULL DEFAULT '[]',
        last_event_sent_nid INTEGER NOT NULL DEFAULT 0,
        state_snapshot_nid INTEGER NOT NULL DEFAULT 0,
        room_version TEXT NOT NULL
      );

      CREATE TABLE roomserver_state_block (
        state_block_nid INTEGER PRIMARY KEY AUTOINCREMENT,
        state_block_hash BLOB NOT NULL UNIQUE,
        entry_count INTEGER NOT NULL,
        entries BLOB NOT NULL
      );

      CREATE TABLE roomserver_state_snapshots (
        state_snapshot_nid INTEGER PRIMARY KEY AUTOINCREMENT,
        state_snapshot_hash BLOB NOT NULL UNIQUE,
        room_nid INTEGER NOT NULL,
        state_block_nids TEXT NOT NULL
      );

      CREATE TABLE roomserver_membership (
        room_nid INTEGER NOT NULL,
        target_nid INTEGER NOT NULL,
        sender_nid INTEGER NOT NULL DEFAULT 0,
        membership_nid INTEGER NOT NULL DEFAULT 1,
        event_nid INTEGER NOT NULL DEFAULT 0,
        target_local INTEGER NOT NULL DEFAULT 0,
        forgotten INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (room_nid, target_nid)
      ) WITHOUT ROWID;
      CREATE INDEX roomserver_membership_target ON roomserver_membership (target_nid, membership_nid);

      CREATE TABLE roomserver_previous_events (
        previous_event_id TEXT NOT NULL,
        event_nid INTEGER NOT NULL,
        PRIMARY KEY (previous_event_id, event_nid)
      ) WITHOUT ROWID;

      CREATE TABLE roomserver_invites (
        invite_event_id TEXT PRIMARY KEY,
        room_nid INTEGER NOT NULL,
        target_nid INTEGER NOT NULL,
        sender_nid INTEGER NOT NULL DEFAULT 0,
        retired INTEGER NOT NULL DEFAULT 0,
        invite_event_json TEXT NOT NULL
      );
      CREATE INDEX roomserver_invites_active ON roomserver_invites (target_nid, room_nid) WHERE retired = 0;

      CREATE TABLE roomserver_redactions (
        redaction_event_id TEXT PRIMARY KEY,
        redacts_event_id TEXT NOT NULL,
        validated INTEGER NOT NULL
      );
      CREATE INDEX roomserver_redactions_redacts ON roomserver_redactions (redacts_event_id);

      CREATE TABLE roomserver_room_aliases (
        alias TEXT PRIMARY KEY,
        room_id TEXT NOT NULL,
        creator_id TEXT NOT NULL
      );
      CREATE INDEX roomserver_room_aliases_room ON roomserver_room_aliases (room_id);

      CREATE TABLE roomserver_published (
        room_id TEXT PRIMARY KEY,
        published INTEGER NOT NULL DEFAULT 0
      );

      CREATE TABLE roomserver_transactions (
        transaction_id TEXT NOT NULL,
        session_id INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        PRIMARY KEY (transaction_id, session_id, user_id)
      );
    `,
  },
  {
    version: 2,
    name: 'federation blacklist, key server, key backup, send-to-device and partition offset tables',
    sql: `
      CREATE TABLE federationsender_blacklist (
        server_name TEXT PRIMARY KEY
      ) WITHOUT ROWID;

      CREATE TABLE keyserver_device_keys (
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        ts_added_secs INTEGER NOT NULL,
        key_json TEXT NOT NULL,
        stream_id INTEGER NOT NULL,
        display_name TEXT,
        PRIMARY KEY (user_id, device_id)
      ) WITHOUT ROWID;
      CREATE INDEX keyserver_device_keys_stream ON keyserver_device_keys (user_id, stream_id);

      CREATE TABLE keyserver_one_time_keys (
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        key_id TEXT NOT NULL,
        ts_added_secs INTEGER NOT NULL,
        key_json TEXT NOT NULL,
        PRIMARY KEY (user_id, device_id, algorithm, key_id)
      ) WITHOUT ROWID;

      -- One row per user; change_id is max + 1 over the table (rows are never deleted, so it only grows).
      CREATE TABLE keyserver_key_changes (
        user_id TEXT PRIMARY KEY,
        change_id INTEGER NOT NULL UNIQUE
      );

      CREATE TABLE keyserver_cross_signing_keys (
        user_id TEXT NOT NULL,
        key_type INTEGER NOT NULL,
        key_data TEXT NOT NULL,
        PRIMARY KEY (user_id, key_type)
      ) WITHOUT ROWID;

      CREATE TABLE keyserver_cross_signing_sigs (
        origin_user_id TEXT NOT NULL,
        origin_key_id TEXT NOT NULL,
        target_user_id TEXT NOT NULL,
        target_key_id TEXT NOT NULL,
        signature TEXT NOT NULL,
        PRIMARY KEY (target_user_id, target_key_id, origin_user_id)
      ) WITHOUT ROWID;

      CREATE TABLE keyserver_stale_device_lists (
        user_id TEXT PRIMARY KEY,
        domain TEXT NOT NULL,
        is_stale INTEGER NOT NULL,
        ts_added_secs INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX keyserver_stale_device_lists_domain ON keyserver_stale_device_lists (domain, is_stale);

      -- AUTOINCREMENT: versions come from one counter for all users and are never reused.
      CREATE TABLE userapi_key_backup_versions (
        version INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        auth_data TEXT NOT NULL,
        etag TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX userapi_key_backup_versions_user ON userapi_key_backup_versions (user_id, version);

      CREATE TABLE userapi_key_backups (
        user_id TEXT NOT NULL,
        version TEXT NOT NULL,
        room_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        first_message_index INTEGER NOT NULL,
        forwarded_count INTEGER NOT NULL,
        is_verified INTEGER NOT NULL,
        session_data TEXT NOT NULL,
        PRIMARY KEY (user_id, version, room_id, session_id)
      ) WITHOUT ROWID;

      -- AUTOINCREMENT: positions are never reused, even after the newest messages are deleted.
      CREATE TABLE syncapi_send_to_device (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        content TEXT NOT NULL
      );
      CREATE INDEX syncapi_send_to_device_recipient ON syncapi_send_to_device (user_id, device_id, id);

      CREATE TABLE partition_offsets (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        partition_offset INTEGER NOT NULL,
        PRIMARY KEY (topic, partition)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 3,
    name: 'rooms by event type; room versions from create events',
    sql: `
      -- The rooms holding an event of a type (Dendrite's SelectRoomsWithEventTypeNID: server ACLs at start-up).
      CREATE INDEX roomserver_events_type_room ON roomserver_events (event_type_nid, room_nid);
      -- Rooms an older build stored without a version take the one their stored create event declares ("1" if none).
      UPDATE roomserver_rooms SET room_version = COALESCE((
        SELECT json_extract(j.event_json, '$.content.room_version') FROM roomserver_events e
          JOIN roomserver_event_json j ON j.event_nid = e.event_nid
          WHERE e.room_nid = roomserver_rooms.room_nid AND e.event_type_nid = 1 AND e.event_state_key_nid = 1 LIMIT 1), '1')
        WHERE room_version = '' AND EXISTS (SELECT 1 FROM roomserver_events e
          WHERE e.room_nid = roomserver_rooms.room_nid AND e.event_type_nid = 1 AND e.event_state_key_nid = 1);
    `,
  },
  {
    version: 4,
    name: 'compact state layout: 32-bit content keys, binary block lists',
    sql: `
      CREATE TABLE roomserver_state_block_v4 (
        state_block_nid INTEGER PRIMARY KEY AUTOINCREMENT,
        content_key INTEGER NOT NULL UNIQUE,
        entry_count INTEGER NOT NULL,
        entries BLOB NOT NULL
      );
      CREATE TABLE roomserver_state_snapshots_v4 (
        state_snapshot_nid INTEGER PRIMARY KEY AUTOINCREMENT,
        content_key INTEGER NOT NULL UNIQUE,
        room_nid INTEGER NOT NULL,
        block_list BLOB NOT NULL
      );
    `,
    run: compactStateLayout,
  },
  {
    version: 5,
    name: 'send-to-device messages: when each was sent, for retention',
    // Messages stored before this migration count as sent at it: a retention age then deletes none of them early.
    sql: `
      ALTER TABLE syncapi_send_to_device ADD COLUMN sent_at INTEGER NOT NULL DEFAULT 0;
      UPDATE syncapi_send_to_device SET sent_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
      CREATE INDEX syncapi_send_to_device_sent_at ON syncapi_send_to_device (sent_at);
    `,
  },
  {
    version: 6,
    name: 'fallback keys',
    sql: `
      -- A device's fallback key per algorithm (MSC2732): replaced by each new upload, marked used when a claim gets it.
      CREATE TABLE keyserver_fallback_keys (
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        key_id TEXT NOT NULL,
        ts_added_secs INTEGER NOT NULL,
        key_json TEXT NOT NULL,
        used INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (user_id, device_id, algorithm)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 7,
    name: 'previous events by the event naming them: a room\'s backward extremities without a scan of every reference',
    sql: 'CREATE INDEX roomserver_previous_events_event ON roomserver_previous_events (event_nid);',
  },
  {
    version: 8,
    name: 'a room\'s rows by its NID: purges and room sizes read the room, not every table',
    sql: `
      CREATE INDEX roomserver_state_snapshots_room ON roomserver_state_snapshots (room_nid);
      CREATE INDEX roomserver_events_snapshot ON roomserver_events (state_snapshot_nid);
      CREATE INDEX roomserver_invites_room ON roomserver_invites (room_nid);
      CREATE INDEX roomserver_transactions_event ON roomserver_transactions (event_id);
      CREATE INDEX roomserver_rooms_snapshot ON roomserver_rooms (state_snapshot_nid);
    `,
    run: deleteUnnamedBlocks,
  },
  {
    version: 9,
    name: 'room directory per appservice network, event reports, user room keys',
    sql: `
      -- A room is published per (appservice, network); the rows there were are the server's own list ("", "").
      CREATE TABLE roomserver_published_by_network (
        room_id TEXT NOT NULL,
        appservice_id TEXT NOT NULL DEFAULT '',
        network_id TEXT NOT NULL DEFAULT '',
        published INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (room_id, appservice_id, network_id)
      );
      INSERT INTO roomserver_published_by_network (room_id, published) SELECT room_id, published FROM roomserver_published;
      DROP TABLE roomserver_published;
      ALTER TABLE roomserver_published_by_network RENAME TO roomserver_published;

      CREATE TABLE roomserver_reported_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        room_nid INTEGER NOT NULL,
        event_nid INTEGER NOT NULL,
        reporting_user_nid INTEGER NOT NULL,
        event_sender_nid INTEGER NOT NULL,
        reason TEXT NOT NULL,
        score INTEGER NOT NULL,
        received_ts INTEGER NOT NULL
      );
      CREATE INDEX roomserver_reported_events_received ON roomserver_reported_events (received_ts, id);

      -- Keys as unpadded base64; the private key is absent for a remote user.
      CREATE TABLE roomserver_user_room_keys (
        user_nid INTEGER NOT NULL,
        room_nid INTEGER NOT NULL,
        pseudo_id_key TEXT,
        pseudo_id_pub_key TEXT NOT NULL,
        PRIMARY KEY (user_nid, room_nid)
      ) WITHOUT ROWID;
      CREATE INDEX roomserver_user_room_keys_public ON roomserver_user_room_keys (room_nid, pseudo_id_pub_key);
    `,
  },
];

/** Applies the migrations this file has and the database lacks. Returns the versions applied. */
/** `through`: the last version to apply (tests that write a store as an older build did); every one by default. */
export function migrate(db: Database.Database, onProgress?: (p: MigrationProgress) => void, through = Infinity): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS matrix_storage_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`);
  const applied: number[] = [];
  const done = new Set((db.prepare('SELECT version FROM matrix_storage_migrations').all() as { version: number }[]).map((r) => r.version));
  const pending = MIGRATIONS.filter((m) => m.version <= through);
  const total = pending.filter((m) => !done.has(m.version)).length;
  for (const m of pending) {
    // IMMEDIATE: a second process opening the same file waits here instead of applying the migration twice.
    db.exec('BEGIN IMMEDIATE');
    try {
      const already = db.prepare('SELECT 1 FROM matrix_storage_migrations WHERE version = ?').get(m.version);
      if (!already) {
        db.exec(m.sql);
        m.run?.(db);
        db.prepare('INSERT INTO matrix_storage_migrations (version, name, applied_at) VALUES (?, ?, ?)')
          .run(m.version, m.name, new Date().toISOString());
        applied.push(m.version);
      }
      db.exec('COMMIT');
      if (applied.at(-1) === m.version) onProgress?.({ done: applied.length, total, version: m.version, name: m.name });
    } catch (e) {
      db.exec('ROLLBACK');
      throw e;
    }
  }
  return applied;
}

/** The versions applied to this database (none when it has no migrations table yet); reads only. */
export function appliedVersions(db: Database.Database): Set<number> {
  const table = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'matrix_storage_migrations'`).get();
  if (!table) return new Set();
  return new Set((db.prepare('SELECT version FROM matrix_storage_migrations').all() as { version: number }[]).map((r) => r.version));
}

/** The highest migration version applied to this database. */
export function schemaVersion(db: Database.Database): number {
  const row = db.prepare('SELECT max(version) AS v FROM matrix_storage_migrations').get() as { v: number | null };
  return row.v ?? 0;
}
