import type pg from 'pg';
import type { MigrationProgress } from '../../di/driver.js';
import { PREASSIGNED_EVENT_TYPES } from '../../types/nids.js';
import { assignContentKeys } from '../shared/content-keys.js';
import { contentKey, decodeBlockList, encodeBlockList } from '../shared/state-codec.js';

/**
 * The PostgreSQL schema, as an append-only list of versioned migrations. Never edit a migration that has shipped:
 * add the next one. All pending migrations run in one transaction that first takes an advisory lock on the
 * schema, and each is recorded in matrix_storage_migrations: two processes migrating at once apply each exactly
 * once (the second waits, then finds nothing left to do), and a failed migration leaves nothing half done.
 *
 * Dialect notes (SQLite in ../sqlite/migrations.ts), each difference small and visible:
 * - NID lists are bigint[] here, JSON text there; hashes and block bytes are bytea here, BLOB there; flags are
 *   boolean here, 0/1 there.
 * - Event types and state keys take NIDs from sequences starting at 65536 (2^16, as Dendrite does on PostgreSQL:
 *   room for more preassigned values); SQLite continues from the seeds. Rooms, blocks, snapshots and events
 *   start at 1 on both.
 * - Unbounded text keys (state keys; event types, which only the parser limits; client transaction IDs) are made
 *   unique through a SHA-256 column, not the text itself: a B-tree index entry cannot exceed about 2.7 kB, and a
 *   state key has no limit of its own. Lookups go through the same 32-byte hash, so they stay single index probes.
 * - Insertion order ("first stored", "in insertion order") comes from an identity column where SQLite has rowid.
 * - Text that is sorted or compared is COLLATE "C": code-point order, the same on every server whatever its locale.
 * - Counters SQLite takes as max + 1 under its single writer come from a sequence here (key change IDs), or from a
 *   lock (a device's stream IDs: a transaction-scoped advisory lock on the user, see device-keys.ts).
 */
interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  /** Work SQL alone cannot do (binary encodings), run after `sql` in the same transaction; `finish` then runs. */
  readonly run?: (client: pg.PoolClient) => Promise<void>;
  readonly finish?: string;
}

const PAGE = 1000;

/** Rows of a table in primary key order, a page at a time. */
async function* pages<R>(client: pg.PoolClient, sql: string): AsyncGenerator<R[]> {
  for (let after = 0; ;) {
    const rows = (await client.query(sql, [after, PAGE])).rows as (R & { nid: number })[];
    if (rows.length === 0) return;
    yield rows;
    after = Number(rows.at(-1)!.nid);
  }
}

/**
 * Version 4: the compact state layout. Every block and snapshot row gets its 32-bit content key (probing past
 * collisions, rows taken in NID order as they were first stored) and every snapshot its block list in the binary
 * encoding; NIDs and identity sequences stay as they are.
 */
async function compactStateLayout(client: pg.PoolClient): Promise<void> {
  const convert = async <R extends { nid: number }>(table: string, nidColumn: string, select: string,
    row: (r: R) => { key: number; set: unknown[] }, setSql: string, setTypes: string[]) => {
    for await (const rows of pages<R>(client, select)) {
      const converted = rows.map((r) => ({ nid: Number(r.nid), ...row(r) }));
      const keys = await assignContentKeys(table, converted, async (asked) => new Map((await client.query<{ key: number; nid: string }>(
        `SELECT content_key AS key, ${nidColumn} AS nid FROM ${table} WHERE content_key = ANY($1::int4[])`, [asked])).rows.map((h) => [h.key, Number(h.nid)])));
      await client.query(`UPDATE ${table} t SET content_key = u.key${setSql} FROM unnest($1::bigint[], $2::int4[]${setTypes.map((ty, i) => `, $${i + 3}::${ty}[]`).join('')})
        AS u(nid, key${setTypes.map((_, i) => `, v${i}`).join('')}) WHERE t.${nidColumn} = u.nid`,
      [converted.map((c) => c.nid), keys, ...setTypes.map((_, i) => converted.map((c) => c.set[i]))]);
    }
  };
  await convert<{ nid: number; entries: Buffer }>('roomserver_state_block', 'state_block_nid',
    'SELECT state_block_nid AS nid, entries FROM roomserver_state_block WHERE state_block_nid > $1 ORDER BY state_block_nid LIMIT $2',
    (r) => ({ key: contentKey(r.entries), set: [] }), '', []);
  await convert<{ nid: number; blocks: (string | number)[] }>('roomserver_state_snapshots', 'state_snapshot_nid',
    'SELECT state_snapshot_nid AS nid, state_block_nids AS blocks FROM roomserver_state_snapshots WHERE state_snapshot_nid > $1 ORDER BY state_snapshot_nid LIMIT $2',
    (r) => {
      const list = encodeBlockList(r.blocks.map(Number));
      return { key: contentKey(list), set: [list] };
    }, ', block_list = u.v0', ['bytea']);
}

/** The first NID handed out for event types and state keys that are not preassigned. */
export const FIRST_ASSIGNED_NID = 65_536;

/**
 * Version 8: deletes the state blocks no snapshot names. Earlier builds wrote the delta block of a state that a
 * merge then folded into a bigger block; named by nothing, it belongs to no room a purge can find it through.
 */
async function deleteUnnamedBlocks(client: pg.PoolClient): Promise<void> {
  const named = new Set<number>();
  for await (const rows of pages<{ nid: string; list: Buffer }>(client,
    'SELECT state_snapshot_nid AS nid, block_list AS list FROM roomserver_state_snapshots WHERE state_snapshot_nid > $1 ORDER BY state_snapshot_nid LIMIT $2')) {
    for (const r of rows) for (const b of decodeBlockList(r.list)) named.add(b);
  }
  const unnamed: number[] = [];
  for await (const rows of pages<{ nid: string }>(client,
    'SELECT state_block_nid AS nid FROM roomserver_state_block WHERE state_block_nid > $1 ORDER BY state_block_nid LIMIT $2')) {
    for (const r of rows) if (!named.has(Number(r.nid))) unnamed.push(Number(r.nid));
  }
  for (let i = 0; i < unnamed.length; i += PAGE) {
    await client.query('DELETE FROM roomserver_state_block WHERE state_block_nid = ANY($1::bigint[])', [unnamed.slice(i, i + PAGE)]);
  }
}

const sha = (literal: string) => `sha256(convert_to(${literal}, 'UTF8'))`;
const seedEventTypes = PREASSIGNED_EVENT_TYPES.map(([nid, type]) => `(${nid}, ${sha(`'${type}'`)}, '${type}')`).join(', ');

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'room server tables',
    sql: `
      CREATE SEQUENCE roomserver_event_type_nid_seq START ${FIRST_ASSIGNED_NID};
      CREATE TABLE roomserver_event_types (
        event_type_nid bigint PRIMARY KEY DEFAULT nextval('roomserver_event_type_nid_seq'),
        event_type_hash bytea NOT NULL UNIQUE,
        event_type text COLLATE "C" NOT NULL
      );
      ALTER SEQUENCE roomserver_event_type_nid_seq OWNED BY roomserver_event_types.event_type_nid;
      INSERT INTO roomserver_event_types (event_type_nid, event_type_hash, event_type) VALUES ${seedEventTypes}
        ON CONFLICT DO NOTHING;

      CREATE SEQUENCE roomserver_event_state_key_nid_seq START ${FIRST_ASSIGNED_NID};
      CREATE TABLE roomserver_event_state_keys (
        event_state_key_nid bigint PRIMARY KEY DEFAULT nextval('roomserver_event_state_key_nid_seq'),
        event_state_key_hash bytea NOT NULL UNIQUE,
        event_state_key text COLLATE "C" NOT NULL
      );
      ALTER SEQUENCE roomserver_event_state_key_nid_seq OWNED BY roomserver_event_state_keys.event_state_key_nid;
      INSERT INTO roomserver_event_state_keys (event_state_key_nid, event_state_key_hash, event_state_key)
        VALUES (1, ${sha("''")}, '') ON CONFLICT DO NOTHING;

      -- Event NIDs are reserved (nextval) before the row is written, so the row takes them explicitly.
      CREATE SEQUENCE roomserver_event_nid_seq;
      CREATE TABLE roomserver_events (
        event_nid bigint PRIMARY KEY,
        room_nid bigint NOT NULL,
        event_type_nid bigint NOT NULL,
        event_state_key_nid bigint NOT NULL,
        sent_to_output boolean NOT NULL DEFAULT false,
        state_snapshot_nid bigint NOT NULL DEFAULT 0,
        depth bigint NOT NULL,
        event_id text COLLATE "C" NOT NULL UNIQUE,
        auth_event_nids bigint[] NOT NULL DEFAULT '{}',
        is_rejected boolean NOT NULL DEFAULT false
      );
      ALTER SEQUENCE roomserver_event_nid_seq OWNED BY roomserver_events.event_nid;
      CREATE INDEX roomserver_events_room_type ON roomserver_events (room_nid, event_type_nid);

      CREATE TABLE roomserver_event_json (
        event_nid bigint PRIMARY KEY,
        event_json text NOT NULL
      );

      CREATE TABLE roomserver_rooms (
        room_nid bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        room_id text COLLATE "C" NOT NULL UNIQUE,
        latest_event_nids bigint[] NOT NULL DEFAULT '{}',
        last_event_sent_nid bigint NOT NULL DEFAULT 0,
        state_snapshot_nid bigint NOT NULL DEFAULT 0,
        room_version text NOT NULL
      );

      CREATE TABLE roomserver_state_block (
        state_block_nid bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        state_block_hash bytea NOT NULL UNIQUE,
        entry_count bigint NOT NULL,
        entries bytea NOT NULL
      );

      CREATE TABLE roomserver_state_snapshots (
        state_snapshot_nid bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        state_snapshot_hash bytea NOT NULL UNIQUE,
        room_nid bigint NOT NULL,
        state_block_nids bigint[] NOT NULL
      );

      CREATE TABLE roomserver_membership (
        room_nid bigint NOT NULL,
        target_nid bigint NOT NULL,
        sender_nid bigint NOT NULL DEFAULT 0,
        membership_nid bigint NOT NULL DEFAULT 1,
        event_nid bigint NOT NULL DEFAULT 0,
        target_local boolean NOT NULL DEFAULT false,
        forgotten boolean NOT NULL DEFAULT false,
        PRIMARY KEY (room_nid, target_nid)
      );
      CREATE INDEX roomserver_membership_target ON roomserver_membership (target_nid, membership_nid);

      CREATE TABLE roomserver_previous_events (
        previous_event_id text COLLATE "C" NOT NULL,
        event_nid bigint NOT NULL,
        PRIMARY KEY (previous_event_id, event_nid)
      );

      CREATE TABLE roomserver_invites (
        invite_event_id text COLLATE "C" PRIMARY KEY,
        insertion bigint GENERATED ALWAYS AS IDENTITY,
        room_nid bigint NOT NULL,
        target_nid bigint NOT NULL,
        sender_nid bigint NOT NULL DEFAULT 0,
        retired boolean NOT NULL DEFAULT false,
        invite_event_json text NOT NULL
      );
      CREATE INDEX roomserver_invites_active ON roomserver_invites (target_nid, room_nid, insertion) WHERE NOT retired;

      CREATE TABLE roomserver_redactions (
        redaction_event_id text COLLATE "C" PRIMARY KEY,
        insertion bigint GENERATED ALWAYS AS IDENTITY,
        redacts_event_id text COLLATE "C" NOT NULL,
        validated boolean NOT NULL
      );
      CREATE INDEX roomserver_redactions_redacts ON roomserver_redactions (redacts_event_id, insertion);

      CREATE TABLE roomserver_room_aliases (
        alias text COLLATE "C" PRIMARY KEY,
        insertion bigint GENERATED ALWAYS AS IDENTITY,
        room_id text COLLATE "C" NOT NULL,
        creator_id text NOT NULL
      );
      CREATE INDEX roomserver_room_aliases_room ON roomserver_room_aliases (room_id, insertion);

      CREATE TABLE roomserver_published (
        room_id text COLLATE "C" PRIMARY KEY,
        published boolean NOT NULL DEFAULT false
      );

      -- The key is hashed: a client's transaction ID has no length limit.
      CREATE TABLE roomserver_transactions (
        transaction_key_hash bytea PRIMARY KEY,
        transaction_id text NOT NULL,
        session_id bigint NOT NULL,
        user_id text NOT NULL,
        event_id text NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'federation blacklist, key server, key backup, send-to-device and partition offset tables',
    // SQLite's version 2, table for table and column for column. Every text key here is a Matrix identifier that
    // the Database layer caps at 255 bytes (user, device, room, session, key and algorithm IDs, server names,
    // topics), so even the widest primary key (one_time_keys: four of them) stays far below the B-tree entry limit
    // and none needs a digest column.
    sql: `
      CREATE TABLE federationsender_blacklist (
        server_name text COLLATE "C" PRIMARY KEY
      );

      CREATE TABLE keyserver_device_keys (
        user_id text COLLATE "C" NOT NULL,
        device_id text COLLATE "C" NOT NULL,
        ts_added_secs bigint NOT NULL,
        key_json text NOT NULL,
        stream_id bigint NOT NULL,
        display_name text,
        PRIMARY KEY (user_id, device_id)
      );
      CREATE INDEX keyserver_device_keys_stream ON keyserver_device_keys (user_id, stream_id);

      CREATE TABLE keyserver_one_time_keys (
        user_id text COLLATE "C" NOT NULL,
        device_id text COLLATE "C" NOT NULL,
        algorithm text COLLATE "C" NOT NULL,
        key_id text COLLATE "C" NOT NULL,
        ts_added_secs bigint NOT NULL,
        key_json text NOT NULL,
        PRIMARY KEY (user_id, device_id, algorithm, key_id)
      );

      -- One row per user. A change takes nextval (SQLite: max + 1 under its single writer), so change IDs only grow,
      -- whichever transactions run at once.
      CREATE SEQUENCE keyserver_key_changes_change_id_seq;
      CREATE TABLE keyserver_key_changes (
        user_id text COLLATE "C" PRIMARY KEY,
        change_id bigint NOT NULL UNIQUE
      );
      ALTER SEQUENCE keyserver_key_changes_change_id_seq OWNED BY keyserver_key_changes.change_id;

      CREATE TABLE keyserver_cross_signing_keys (
        user_id text COLLATE "C" NOT NULL,
        key_type smallint NOT NULL,
        key_data text NOT NULL,
        PRIMARY KEY (user_id, key_type)
      );

      CREATE TABLE keyserver_cross_signing_sigs (
        origin_user_id text COLLATE "C" NOT NULL,
        origin_key_id text NOT NULL,
        target_user_id text COLLATE "C" NOT NULL,
        target_key_id text COLLATE "C" NOT NULL,
        signature text NOT NULL,
        PRIMARY KEY (target_user_id, target_key_id, origin_user_id)
      );

      CREATE TABLE keyserver_stale_device_lists (
        user_id text COLLATE "C" PRIMARY KEY,
        domain text COLLATE "C" NOT NULL,
        is_stale boolean NOT NULL,
        ts_added_secs bigint NOT NULL
      );
      CREATE INDEX keyserver_stale_device_lists_domain ON keyserver_stale_device_lists (domain, is_stale);

      -- Identity where SQLite has AUTOINCREMENT: versions come from one sequence for all users and are never reused.
      CREATE TABLE userapi_key_backup_versions (
        version bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id text COLLATE "C" NOT NULL,
        algorithm text NOT NULL,
        auth_data text NOT NULL,
        etag text NOT NULL,
        deleted boolean NOT NULL DEFAULT false
      );
      CREATE INDEX userapi_key_backup_versions_user ON userapi_key_backup_versions (user_id, version);

      CREATE TABLE userapi_key_backups (
        user_id text COLLATE "C" NOT NULL,
        version text COLLATE "C" NOT NULL,
        room_id text COLLATE "C" NOT NULL,
        session_id text COLLATE "C" NOT NULL,
        first_message_index bigint NOT NULL,
        forwarded_count bigint NOT NULL,
        is_verified boolean NOT NULL,
        session_data text NOT NULL,
        PRIMARY KEY (user_id, version, room_id, session_id)
      );

      -- Identity where SQLite has AUTOINCREMENT: positions are never reused, even after the newest messages are deleted.
      CREATE TABLE syncapi_send_to_device (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id text COLLATE "C" NOT NULL,
        device_id text COLLATE "C" NOT NULL,
        content text NOT NULL
      );
      CREATE INDEX syncapi_send_to_device_recipient ON syncapi_send_to_device (user_id, device_id, id);

      CREATE TABLE partition_offsets (
        topic text COLLATE "C" NOT NULL,
        partition integer NOT NULL,
        partition_offset bigint NOT NULL,
        PRIMARY KEY (topic, partition)
      );
    `,
  },
  {
    version: 3,
    name: 'rooms by event type; room versions from create events',
    // SQLite's version 3, statement for statement.
    sql: `
      CREATE INDEX roomserver_events_type_room ON roomserver_events (event_type_nid, room_nid);
      UPDATE roomserver_rooms r SET room_version = coalesce((
        SELECT j.event_json::jsonb -> 'content' ->> 'room_version' FROM roomserver_events e
          JOIN roomserver_event_json j ON j.event_nid = e.event_nid
          WHERE e.room_nid = r.room_nid AND e.event_type_nid = 1 AND e.event_state_key_nid = 1 LIMIT 1), '1')
        WHERE r.room_version = '' AND EXISTS (SELECT 1 FROM roomserver_events e
          WHERE e.room_nid = r.room_nid AND e.event_type_nid = 1 AND e.event_state_key_nid = 1);
    `,
  },
  {
    version: 4,
    name: 'compact state layout: 32-bit content keys, binary block lists',
    // The unique indexes come first: the conversion looks keys up through them as it assigns them.
    sql: `
      ALTER TABLE roomserver_state_block ADD COLUMN content_key int4;
      CREATE UNIQUE INDEX roomserver_state_block_content_key ON roomserver_state_block (content_key);
      ALTER TABLE roomserver_state_snapshots ADD COLUMN content_key int4, ADD COLUMN block_list bytea;
      CREATE UNIQUE INDEX roomserver_state_snapshots_content_key ON roomserver_state_snapshots (content_key);
    `,
    run: compactStateLayout,
    finish: `
      ALTER TABLE roomserver_state_block DROP COLUMN state_block_hash, ALTER COLUMN content_key SET NOT NULL;
      ALTER TABLE roomserver_state_snapshots DROP COLUMN state_snapshot_hash, DROP COLUMN state_block_nids,
        ALTER COLUMN content_key SET NOT NULL, ALTER COLUMN block_list SET NOT NULL;
    `,
  },
  {
    version: 5,
    name: 'send-to-device messages: when each was sent, for retention',
    // SQLite's version 5: messages stored before it count as sent at it. The default is evaluated once, for the
    // rows there are, and dropped: every insert states its time.
    sql: `
      ALTER TABLE syncapi_send_to_device ADD COLUMN sent_at bigint NOT NULL DEFAULT (extract(epoch FROM now()) * 1000)::bigint;
      ALTER TABLE syncapi_send_to_device ALTER COLUMN sent_at DROP DEFAULT;
      CREATE INDEX syncapi_send_to_device_sent_at ON syncapi_send_to_device (sent_at);
    `,
  },
  {
    version: 6,
    name: 'fallback keys',
    sql: `
      -- A device's fallback key per algorithm (MSC2732): replaced by each new upload, marked used when a claim gets it.
      CREATE TABLE keyserver_fallback_keys (
        user_id text COLLATE "C" NOT NULL,
        device_id text COLLATE "C" NOT NULL,
        algorithm text COLLATE "C" NOT NULL,
        key_id text COLLATE "C" NOT NULL,
        ts_added_secs bigint NOT NULL,
        key_json text NOT NULL,
        used boolean NOT NULL DEFAULT false,
        PRIMARY KEY (user_id, device_id, algorithm)
      );
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
      ALTER TABLE roomserver_published
        ADD COLUMN appservice_id text COLLATE "C" NOT NULL DEFAULT '',
        ADD COLUMN network_id text COLLATE "C" NOT NULL DEFAULT '';
      ALTER TABLE roomserver_published DROP CONSTRAINT roomserver_published_pkey;
      ALTER TABLE roomserver_published ADD PRIMARY KEY (room_id, appservice_id, network_id);

      CREATE TABLE roomserver_reported_events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        room_nid bigint NOT NULL,
        event_nid bigint NOT NULL,
        reporting_user_nid bigint NOT NULL,
        event_sender_nid bigint NOT NULL,
        reason text NOT NULL,
        score bigint NOT NULL,
        received_ts bigint NOT NULL
      );
      CREATE INDEX roomserver_reported_events_received ON roomserver_reported_events (received_ts, id);

      -- Keys as unpadded base64; the private key is absent for a remote user.
      CREATE TABLE roomserver_user_room_keys (
        user_nid bigint NOT NULL,
        room_nid bigint NOT NULL,
        pseudo_id_key text,
        pseudo_id_pub_key text COLLATE "C" NOT NULL,
        PRIMARY KEY (user_nid, room_nid)
      );
      CREATE INDEX roomserver_user_room_keys_public ON roomserver_user_room_keys (room_nid, pseudo_id_pub_key);
    `,
  },
];

/** The newest schema version this build knows. */
export const LATEST_VERSION = Math.max(...MIGRATIONS.map((m) => m.version));

const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS matrix_storage_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

/**
 * Applies the migrations this file has and the schema lacks, creating the schema itself if needed. Returns the
 * versions applied (up to `through`, for tests that write a store as an older build did). The advisory lock is keyed by the schema name, so stores in different schemas of one database
 * migrate independently; it is released when the transaction ends, even if the process dies.
 */
export async function migrate(pool: pg.Pool, schema: string, onProgress?: (p: MigrationProgress) => void, through = Infinity): Promise<number[]> {
  const client = await pool.connect();
  let broken: Error | undefined;
  // A checked-out client needs its own 'error' listener (see PostgresConnection.transaction).
  const onError = (err: Error) => { broken = err; };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    try {
      await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('matrix-storage migrations: ' || $1::text, 0))`, [schema]);
      // CREATE SCHEMA IF NOT EXISTS still needs the CREATE privilege on the database: only ask for it when needed.
      const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
      if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${schema}`);
      await client.query(MIGRATIONS_TABLE);
      const done = new Set((await client.query<{ version: number }>('SELECT version FROM matrix_storage_migrations')).rows.map((r) => r.version));
      const applied: number[] = [];
      const pending = MIGRATIONS.filter((m) => m.version <= through);
      const total = pending.filter((m) => !done.has(m.version)).length;
      for (const m of pending) {
        if (done.has(m.version)) continue;
        await client.query(m.sql);
        await m.run?.(client);
        if (m.finish) await client.query(m.finish);
        await client.query('INSERT INTO matrix_storage_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        applied.push(m.version);
        // Within the one transaction: "done" means applied, visible once it commits.
        onProgress?.({ done: applied.length, total, version: m.version, name: m.name });
      }
      await client.query('COMMIT');
      return applied;
    } catch (e) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        broken = rollbackError as Error;
      }
      throw e;
    }
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

/** The versions applied in the pool's schema (none when it or its migrations table does not exist); reads only. */
export async function appliedVersions(pool: pg.Pool): Promise<Set<number>> {
  const present = await pool.query<{ present: boolean }>(`SELECT to_regclass('matrix_storage_migrations') IS NOT NULL AS present`);
  if (!present.rows[0]?.present) return new Set();
  return new Set((await pool.query<{ version: number }>('SELECT version FROM matrix_storage_migrations')).rows.map((r) => r.version));
}

/**
 * The schema version in place: 0 if the schema or its migrations table does not exist yet. Reads without creating
 * anything, for `postgres.migrate_on_open: false`.
 */
export async function schemaVersion(pool: pg.Pool): Promise<number> {
  // Unqualified: resolved through the pool's search_path, so a schema that does not exist reads as version 0.
  const present = await pool.query<{ present: boolean }>(`SELECT to_regclass('matrix_storage_migrations') IS NOT NULL AS present`);
  if (!present.rows[0]?.present) return 0;
  const r = await pool.query<{ version: number }>('SELECT coalesce(max(version), 0) AS version FROM matrix_storage_migrations');
  return r.rows[0]?.version ?? 0;
}
