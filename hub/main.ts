// The hub's composition root: the only place that reads process.env, loads key, trust store, reference values
// and API key from files (the local-enrolment layout under AGENTHUB_STATE_DIR by default), listens, and handles
// SIGINT/SIGTERM with a graceful close.
import { join, resolve } from 'node:path';
import { loadApiKey } from '../shared/api_key.js';
import { importSigningKey, parseReferenceValues, parseTrustStore, type JWK } from '../shared/attestation.js';
import { readConfigJson, readConfigText } from '../shared/config.js';
import { errorMessage } from '../shared/errors.js';
import { createLogger } from '../shared/log.js';
import { closeOnSignals } from '../shared/shutdown.js';
import { startHub } from './app.js';
import { loadHubConfig } from './config.js';
import { openHubStore } from './sql_store.js';

async function main(): Promise<void> {
  const config = loadHubConfig(process.env);
  const log = createLogger('hub', config.LOG_LEVEL);
  const stateDir = resolve(config.AGENTHUB_STATE_DIR);
  // Default paths follow the local-enrolment layout (shared/enrolment.ts).
  const hubKeyFile = resolve(config.HUB_KEY_FILE ?? join(stateDir, 'hub', 'hub-key.jwk'));
  const trustStoreFile = resolve(config.TRUST_STORE_FILE ?? join(stateDir, 'hub', 'trust-store.json'));
  const referenceValuesFile = resolve(
    config.REFERENCE_VALUES_FILE ?? join(stateDir, 'hub', 'reference-values.json'),
  );
  const apiKeyFile = resolve(config.API_KEY_FILE ?? join(stateDir, 'api-key'));
  const apiKey = await loadApiKey(config.API_KEY, apiKeyFile, 'API key');
  const hubKey = await importSigningKey((await readConfigJson(hubKeyFile, 'hub key')) as JWK);
  const trustStore = parseTrustStore(await readConfigJson(trustStoreFile, 'trust store'));
  const referenceValues = parseReferenceValues(await readConfigText(referenceValuesFile, 'reference values'));

  const storeKind = config.HUB_TASK_STORE ?? (config.DATABASE_URL === undefined ? 'memory' : 'database');
  const hubStore =
    storeKind === 'database'
      ? await openHubStore({
          log,
          eventLimit: config.TASK_EVENT_LIMIT,
          taskLimit: config.TASK_LIMIT,
          ...(config.DATABASE_URL === undefined
            ? { dataDir: join(stateDir, 'data', 'hub') }
            : { databaseUrl: config.DATABASE_URL }),
        })
      : null;
  const hub = await startHub({
    config,
    hubKey,
    trustStore,
    referenceValues,
    apiKey,
    logger: log,
    ...(hubStore === null ? {} : { store: hubStore.store }),
  });
  log.info({ url: hub.url, port: hub.port, stateDir, taskStore: storeKind }, 'hub ready');
  closeOnSignals(log, async () => {
    await hub.close();
    await hubStore?.close();
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`hub failed to start: ${errorMessage(error)}\n`);
  process.exit(1);
});
