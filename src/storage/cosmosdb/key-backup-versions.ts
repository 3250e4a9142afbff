import { inject, injectable } from 'inversify';
import { checkBackupVersion } from '../../types/keys.js';
import { keyBackupVersionOf, notFound, type KeyBackupVersionRow } from '../shared/contracts.js';
import type { KeyBackupVersion, KeyBackupVersionsTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';

const successor = (etag: string) => String((/^[0-9]{1,15}$/.test(etag) ? Number(etag) : 0) + 1);

/**
 * key_backup_versions on Cosmos DB: `bv|<version>` documents in the user's backup partition `backup|<user ID>`,
 * beside the backed-up sessions. Versions come from a counter shared by all users, taken one at a time so that a
 * new version is greater than every one before it. The etag moves by read and ETag-conditional replace, retried.
 */
@injectable()
export class CosmosKeyBackupVersionsTable implements KeyBackupVersionsTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private ref(userID: string, version: string) {
    return { id: `bv|${Number(checkBackupVersion('backup version', version))}`, pk: this.conn.pk('backup', userID) };
  }

  async insertKeyBackup(_tx: Tx, userID: string, algorithm: string, authData: string, etag: string): Promise<string> {
    const version = await this.conn.sequence('order').nextValue();
    const doc: KeyBackupVersionRow = { userID, version, algorithm, authData, etag, deleted: false };
    await this.conn.requests.create('keyBackupVersions.insert', { id: `bv|${version}`, pk: this.conn.pk('backup', userID), k: 'backup_version', ...doc });
    return String(version);
  }

  async updateKeyBackupAuthData(_tx: Tx, userID: string, version: string, authData: string): Promise<void> {
    const { id, pk } = this.ref(userID, version);
    await this.conn.requests.patch('keyBackupVersions.updateAuthData', id, pk, [{ op: 'set', path: '/authData', value: authData }]);
  }

  async bumpKeyBackupETag(_tx: Tx, userID: string, version: string): Promise<string> {
    const { id, pk } = this.ref(userID, version);
    const r = this.conn.requests;
    for (;;) {
      const doc = await r.read<KeyBackupVersionRow & { id: string; pk: string; k: string }>('keyBackupVersions.bumpETag', id, pk);
      if (!doc) throw notFound('key backup version', version);
      const etag = successor(doc.etag);
      if (await r.patch('keyBackupVersions.bumpETag', id, pk, [{ op: 'set', path: '/etag', value: etag }], { ifMatch: doc._etag })) return etag;
    }
  }

  async deleteKeyBackup(_tx: Tx, userID: string, version: string): Promise<boolean> {
    const { id, pk } = this.ref(userID, version);
    return (await this.conn.requests.patch('keyBackupVersions.delete', id, pk, [{ op: 'set', path: '/deleted', value: true }])) !== undefined;
  }

  async selectKeyBackup(_tx: Tx, userID: string, version: string): Promise<KeyBackupVersion> {
    let doc: KeyBackupVersionRow | undefined;
    if (version === '') {
      const rows = await this.conn.requests.query<KeyBackupVersionRow>('keyBackupVersions.selectLatest', this.conn.pk('backup', userID),
        "SELECT TOP 1 c.userID, c.version, c.algorithm, c.authData, c.etag, c.deleted FROM c WHERE c.pk = @pk AND c.k = 'backup_version' ORDER BY c.version DESC");
      doc = rows[0];
    } else {
      const { id, pk } = this.ref(userID, version);
      doc = await this.conn.requests.read<KeyBackupVersionRow>('keyBackupVersions.select', id, pk);
    }
    return keyBackupVersionOf(doc, userID, version);
  }
}
