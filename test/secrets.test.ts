import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCliReported } from './support/cli.js';
import { redact, redactSettings, rememberSecrets } from '../src/config/redact.js';

/**
 * Secrets never printed: every command of the CLI, run against a catalogue of misconfigurations that hold
 * secrets (PostgreSQL passwords in URLs and query strings, Cosmos DB keys and connection strings, user info in an
 * endpoint, YAML errors on the secret's own line, environment variables, a third-party driver's section), must
 * print none of them on stdout or stderr, in any form, and no stack trace unless --debug is given (and then a
 * redacted one).
 */

const SECRETS = {
  pgPassword: 'PgS3cretPw',
  pgQueryPassword: 'QueryPwS3cret',
  pgSslPassword: 'SslPwS3cret',
  cosmosKey: 'Q29zbW9zS2V5U2VjcmV0MTIz',
  connectionKey: 'Q29ublN0cmluZ0tleVNlY3JldA==',
  endpointPassword: 'EndpointPwS3cret',
  signature: 'SigS3cret',
  driverToken: 'DriverT0kenS3cret',
  specialPassword: 'p@ss:w/rd!S3cret',
  // Written into URLs unencoded, as a deployer might: a parser would cut each of these in two.
  rawAtHash: 'Alfa7@Bravo7#Charlie7',
  rawSlashQuery: 'Delta7/Echo7?Foxtrot7',
  rawPercentColon: 'Golf7%Hotel7:India7',
  rawSpace: 'Juliet7 Kilo7',
} as const;

/**
 * Every form a secret could be printed in, and every piece of one holding characters a URL parser splits at (a
 * password cut in two must not leak its second half).
 */
const forms = (s: string) => [...new Set([s, encodeURIComponent(s), s.toLowerCase(), ...s.split(/[@#/?%:\s]/).filter((p) => p.length >= 4 && p !== s)])];
const ALL_FORMS = Object.values(SECRETS).flatMap(forms);

interface Misconfiguration {
  readonly name: string;
  /** The config file's text (written to matrix-storage.yaml in a fresh directory), if any. */
  readonly yaml?: string;
  /** Environment variables set for the run. */
  readonly env?: Readonly<Record<string, string>>;
}

/** The run's PostgreSQL (known once the global fixture has started it; a placeholder while mocha reads titles). */
const pgTestServer = () => new URL(process.env.TEST_DATABASE_URL ?? 'postgres://127.0.0.1:5432/postgres');
const closedPort = 'postgres://admin:PgS3cretPw@127.0.0.1:1/hs';

function catalogue(): Misconfiguration[] {
  const real = pgTestServer();
  const realWithPassword = `postgres://postgres:${SECRETS.pgPassword}@${real.host}/no_such_database`;
  const cosmos = (settings: string) => `backend: cosmosdb\ncosmosdb:\n${settings}\n  request_timeout_ms: 2000\n  transient_retries: 0\n`;
  return [
    { name: 'postgres: password in the URL, server down', yaml: `backend: postgres\npostgres:\n  url: ${closedPort}\n` },
    { name: 'postgres: password in the URL, unknown host', yaml: `backend: postgres\npostgres:\n  url: postgres://admin:${SECRETS.pgPassword}@no-such-host.invalid/hs\n` },
    { name: 'postgres: password in the URL, database missing on a real server', yaml: `backend: postgres\npostgres:\n  url: ${realWithPassword}\n` },
    { name: 'postgres: ?password= in the query string', yaml: `backend: postgres\npostgres:\n  url: postgres://admin@127.0.0.1:1/hs?password=${SECRETS.pgQueryPassword}\n` },
    { name: 'postgres: sslpassword= in the query string', yaml: `backend: postgres\npostgres:\n  url: "postgres://admin:${SECRETS.pgPassword}@127.0.0.1:1/hs?sslmode=prefer&sslpassword=${SECRETS.pgSslPassword}"\n` },
    { name: 'postgres: a percent-encoded password with special characters', yaml: `backend: postgres\npostgres:\n  url: postgres://admin:${encodeURIComponent(SECRETS.specialPassword)}@127.0.0.1:1/hs\n` },
    { name: 'postgres: unencoded @ and # in the password', yaml: `backend: postgres\npostgres:\n  url: "postgres://matrix:${SECRETS.rawAtHash}@127.0.0.1:1/db"\n` },
    { name: 'postgres: unencoded / and ? in the password', yaml: `backend: postgres\npostgres:\n  url: "postgres://matrix:${SECRETS.rawSlashQuery}@127.0.0.1:1/db"\n` },
    { name: 'postgres: unencoded % and : in the password', yaml: `backend: postgres\npostgres:\n  url: "postgres://matrix:${SECRETS.rawPercentColon}@127.0.0.1:1/db"\n` },
    { name: 'postgres: a space in the password', yaml: `backend: postgres\npostgres:\n  url: "postgres://matrix:${SECRETS.rawSpace}@127.0.0.1:1/db"\n` },
    { name: 'postgres: DATABASE_URL with unencoded @ and #', env: { MATRIX_STORAGE_BACKEND: 'postgres', DATABASE_URL: `postgres://matrix:${SECRETS.rawAtHash}@127.0.0.1:1/db` } },
    { name: 'postgres: DATABASE_URL with a space in the password', env: { MATRIX_STORAGE_BACKEND: 'postgres', DATABASE_URL: `postgres://matrix:${SECRETS.rawSpace}@127.0.0.1:1/db` } },
    { name: 'sqlite in use, the unused postgres URL with a raw password', yaml: `backend: sqlite\nsqlite:\n  path: ./store.db\npostgres:\n  url: "postgres://matrix:${SECRETS.rawSlashQuery}@h/db"\n` },
    { name: 'cosmos: user info with @ and a space in the endpoint', yaml: cosmos(`  endpoint: "https://user:${SECRETS.rawAtHash} ${SECRETS.rawSpace}@127.0.0.1:1/"\n  key: ${SECRETS.cosmosKey}`) },
    { name: 'postgres: a URL of the wrong scheme', yaml: `backend: postgres\npostgres:\n  url: mysql://admin:${SECRETS.pgPassword}@db/hs\n` },
    { name: 'postgres: a bad pool size beside the password', yaml: `backend: postgres\npostgres:\n  url: ${closedPort}\n  pool_size: lots\n` },
    { name: 'postgres: a misspelt key holding the password', yaml: `backend: postgres\npostgres:\n  url: postgres://admin@127.0.0.1:1/hs\n  pasword: ${SECRETS.pgPassword}\n` },
    { name: 'postgres: DATABASE_URL with a password, server down', env: { MATRIX_STORAGE_BACKEND: 'postgres', DATABASE_URL: closedPort } },
    { name: 'postgres: DATABASE_URL of the wrong scheme', env: { MATRIX_STORAGE_BACKEND: 'postgres', DATABASE_URL: `mysql://u:${SECRETS.pgPassword}@h/d` } },
    { name: 'yaml: a syntax error on the line after the password', yaml: `backend: postgres\npostgres:\n  url: ${closedPort}\n  pool_size: [unclosed\n` },
    { name: 'yaml: an unclosed quote on the key line', yaml: `backend: cosmosdb\ncosmosdb:\n  key: "${SECRETS.cosmosKey}\n` },
    { name: 'yaml: the key given twice', yaml: `cosmosdb:\n  key: A\n  key: ${SECRETS.cosmosKey}\n` },
    { name: 'yaml: a tab before the key', yaml: `cosmosdb:\n\tkey: ${SECRETS.cosmosKey}\n` },
    { name: 'yaml: a nested mapping on the connection string line', yaml: `cosmosdb:\n  connection_string: AccountEndpoint=https://h/;AccountKey=${SECRETS.connectionKey}: x\n` },
    { name: 'yaml: an unclosed flow map holding the key', yaml: `cosmosdb: {key: ${SECRETS.cosmosKey}\n` },
    { name: 'cosmos: a key, the account unreachable', yaml: cosmos(`  endpoint: https://127.0.0.1:1/\n  key: ${SECRETS.cosmosKey}`) },
    { name: 'cosmos: user info and a signature in the endpoint', yaml: cosmos(`  endpoint: https://user:${SECRETS.endpointPassword}@127.0.0.1:1/?sig=${SECRETS.signature}\n  key: ${SECRETS.cosmosKey}`) },
    { name: 'cosmos: a connection string, the account unreachable', yaml: cosmos(`  connection_string: AccountEndpoint=https://127.0.0.1:1/;AccountKey=${SECRETS.connectionKey};`) },
    { name: 'cosmos: a connection string without an endpoint', yaml: cosmos(`  connection_string: AccountKey=${SECRETS.connectionKey};`) },
    { name: 'cosmos: a connection string that is only the key', yaml: cosmos(`  connection_string: ${SECRETS.connectionKey}`) },
    { name: 'cosmos: a connection string whose endpoint is not a URL', yaml: cosmos(`  connection_string: AccountEndpoint=nowhere;AccountKey=${SECRETS.connectionKey};`) },
    { name: 'cosmos: a key but no endpoint', yaml: cosmos(`  key: ${SECRETS.cosmosKey}`) },
    { name: 'cosmos: a key that is not a string', yaml: `backend: cosmosdb\ncosmosdb:\n  endpoint: https://127.0.0.1:1/\n  key: [${SECRETS.cosmosKey}]\n` },
    { name: 'cosmos: COSMOS_KEY and COSMOS_ENDPOINT, the account unreachable', env: { MATRIX_STORAGE_BACKEND: 'cosmosdb', COSMOS_ENDPOINT: 'https://127.0.0.1:1/', COSMOS_KEY: SECRETS.cosmosKey } },
    { name: 'cosmos: COSMOS_CONNECTION_STRING, the account unreachable', env: { MATRIX_STORAGE_BACKEND: 'cosmosdb', COSMOS_CONNECTION_STRING: `AccountEndpoint=https://127.0.0.1:1/;AccountKey=${SECRETS.connectionKey};` } },
    { name: 'sqlite in use, with every other backend\'s secrets in the file', yaml: `backend: sqlite\nsqlite:\n  path: ./store.db\npostgres:\n  url: ${closedPort}\ncosmosdb:\n  endpoint: https://u:${SECRETS.endpointPassword}@h/\n  key: ${SECRETS.cosmosKey}\n  connection_string: AccountEndpoint=https://h/;AccountKey=${SECRETS.connectionKey};\n` },
    { name: 'sqlite: the path is a directory, secrets beside it', yaml: `backend: sqlite\nsqlite:\n  path: .\ncosmosdb:\n  key: ${SECRETS.cosmosKey}\n` },
    { name: 'an unknown backend, secrets in its section', yaml: `backend: mydriver\nmydriver:\n  token: ${SECRETS.driverToken}\n  url: https://u:${SECRETS.endpointPassword}@h/\n` },
  ];
}

/** Every command, with the arguments a user would give it. */
const COMMANDS: readonly (readonly string[])[] = [
  ['migrate'], ['import', 'room.jsonl'], ['state', '!r:example.org'], ['state', '!r:example.org', '--after', '$e'], ['keys', '@a:example.org'],
  ['config'], ['demo', '--members', '3', '--events', '12'], ['generate', '--members', '3', '--events', '12', '--out', 'gen.jsonl'],
  ['rooms'], ['room', '!r:example.org'], ['check'], ['purge-room', '!r:example.org', '--yes'],
  ['purge-history', '!r:example.org', '--before', '1', '--yes'], ['conformance', '--grep', 'Table: published'],
];

const ENV_NAMES = ['MATRIX_STORAGE_BACKEND', 'DATABASE_URL', 'COSMOS_ENDPOINT', 'COSMOS_KEY', 'COSMOS_CONNECTION_STRING', 'MATRIX_STORAGE_SQLITE_PATH'];

describe('secrets are never printed', function () {
  this.timeout(180_000);
  let cwd: string;
  let dir: string;
  let savedEnv: Record<string, string | undefined>;
  let configs: Misconfiguration[];
  beforeEach(() => {
    cwd = process.cwd();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-secrets-'));
    fs.writeFileSync(path.join(dir, 'room.jsonl'), `${JSON.stringify({ event_id: '$e', room_id: '!r:example.org', type: 'm.room.create', state_key: '', sender: '@a:example.org', depth: 1, content: {} })}\n`);
    savedEnv = Object.fromEntries(ENV_NAMES.map((n) => [n, process.env[n]]));
    configs = catalogue();
    // The suite's own DATABASE_URL must not stand in for the configurations under test.
    for (const n of ENV_NAMES) delete process.env[n];
    process.chdir(dir); // `demo` and relative SQLite paths work in the run's own directory
  });
  afterEach(() => {
    process.chdir(cwd);
    for (const [n, v] of Object.entries(savedEnv)) { if (v === undefined) delete process.env[n]; else process.env[n] = v; }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`runs every command against ${catalogue().length} misconfigurations (${catalogue().length * COMMANDS.length} runs) and finds no secret in any output`, async () => {
    const leaks: string[] = [];
    let runs = 0;
    for (const m of configs) {
      if (m.yaml !== undefined) fs.writeFileSync(path.join(dir, 'matrix-storage.yaml'), m.yaml);
      else fs.rmSync(path.join(dir, 'matrix-storage.yaml'), { force: true });
      for (const [k, v] of Object.entries(m.env ?? {})) process.env[k] = v;
      try {
        for (const command of COMMANDS) {
          for (const debug of [false, true]) {
            const args = debug ? ['--debug', ...command] : [...command];
            const { code, out, err } = await runCliReported(args);
            runs++;
            const printed = `${out}\n${err}`;
            for (const form of ALL_FORMS) if (printed.includes(form)) leaks.push(`${m.name} | ${args.join(' ')}: printed ${form}`);
            if (!debug && /\n\s+at .+:\d+:\d+/.test(err)) leaks.push(`${m.name} | ${args.join(' ')}: printed a stack trace`);
            if (![0, 1, 2, 3].includes(code)) leaks.push(`${m.name} | ${args.join(' ')}: exit code ${code}`);
          }
        }
      } finally {
        for (const k of Object.keys(m.env ?? {})) delete process.env[k];
      }
    }
    expect(leaks, leaks.slice(0, 30).join('\n')).to.deep.equal([]);
    expect(runs).to.equal(configs.length * COMMANDS.length * 2);
  });

  it('a URL whose password needs percent-encoding is refused with that fix, naming the characters and no secret', async () => {
    for (const [password, named] of [['Pq@Szq#Wyrd', '@ as %40, # as %23'], ['Abq/Bcq?Cdq', '/ as %2F, ? as %3F'], ['Spq Aceq', 'a space as %20'], ['Fifty%Offq', '% as %25']] as const) {
      process.env.MATRIX_STORAGE_BACKEND = 'postgres';
      process.env.DATABASE_URL = `postgres://matrix:${password}@127.0.0.1:1/db`;
      for (const command of [['rooms'], ['config']]) {
        const { code, out, err } = await runCliReported(command);
        expect(code, err).to.equal(2);
        expect(err).to.contain(`Fix: write ${named} in the password`);
        for (const piece of password.split(/[@#/?%\s]/).filter((p) => p.length >= 3)) expect(`${out}${err}`).not.to.contain(piece);
      }
    }
    // A colon in the password needs no encoding: only the first one separates user and password.
    process.env.DATABASE_URL = 'postgres://matrix:a:bcdef@127.0.0.1:1/db';
    const { out } = await runCliReported(['config']);
    expect(out).to.contain('postgres://matrix:***@127.0.0.1:1/db').and.not.contain('bcdef');
  });

  it('the rule hides secrets by shape, and by value wherever a known secret appears', () => {
    expect(redact('postgres://admin:hunter22@db:5432/hs?sslpassword=abc&x=1')).to.equal('postgres://admin:***@db:5432/hs?sslpassword=***&x=1');
    expect(redact('AccountEndpoint=https://a.documents.azure.com:443/;AccountKey=abc+/de==;')).to.equal('AccountEndpoint=https://a.documents.azure.com:443/;AccountKey=***;');
    expect(redact('https://u:p4ss@h/?sig=zzz&token=ttt')).to.equal('https://u:***@h/?sig=***&token=***');
    // The whole password, whatever it holds: up to the last @ of the word, a quote ending it (JSON output).
    expect(redact('postgres://matrix:p@ss#word@127.0.0.1:44785/db')).to.equal('postgres://matrix:***@127.0.0.1:44785/db');
    expect(redact('{"url":"postgres://m:a/b?c@h/db","endpoint":"https://x@y/"}')).to.equal('{"url":"postgres://m:***@h/db","endpoint":"https://x@y/"}');
    rememberSecrets('Zq9-known-secret');
    expect(redact('the server said: bad key Zq9-known-secret, and Zq9-known-secret again')).to.equal('the server said: bad key ***, and *** again');
    expect(redactSettings({ cosmosdb: { key: 'x1', connectionString: '', endpoint: 'https://u:pw42@h/' }, mine: { api_token: 't', n: 3 } }))
      .to.deep.equal({ cosmosdb: { key: '***', connectionString: '', endpoint: 'https://u:***@h/' }, mine: { api_token: '***', n: 3 } });
  });
});
