// The PostgreSQL server the integration tests use, and throw-away databases on it.
import { randomUUID } from 'node:crypto';
import pg from 'pg';

/** Admin URL of the test server (AGENTHUB_TEST_POSTGRES_URL, else the local default). */
export const TEST_POSTGRES_URL =
  process.env.AGENTHUB_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Why the server at `adminUrl` cannot be reached, or undefined when it can. */
export async function postgresUnreachableReason(adminUrl = TEST_POSTGRES_URL): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.end();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** True when the test server answers; otherwise warns `skipping <what>: <url> is not reachable`. */
export async function postgresReachable(what: string, adminUrl = TEST_POSTGRES_URL): Promise<boolean> {
  if ((await postgresUnreachableReason(adminUrl)) === undefined) return true;
  console.warn(`skipping ${what}: ${adminUrl} is not reachable`);
  return false;
}

export interface ScratchDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/** Creates a database named `<prefix>_<uuid>` on the server and returns its URL and a drop function. */
export async function createScratchDatabase(
  prefix: string,
  adminUrl = TEST_POSTGRES_URL,
): Promise<ScratchDatabase> {
  const name = `${prefix}_${randomUUID().replaceAll('-', '')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const dropper = new pg.Client({ connectionString: adminUrl });
      await dropper.connect();
      await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await dropper.end();
    },
  };
}
