// The marketing spoke's HTTP surface under /marketing: an express Router of JSON endpoints over the toolkit's
// operations; bad input (malformed JSON included) answers 400 with the field named, other errors map through
// the one error table; a client that disconnects cancels the work.
import express from 'express';
import { AppError, isAppError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { MarketingOperations } from './toolkit.js';

/** Largest JSON body accepted (path files for attribution can be large). */
export const MARKETING_BODY_LIMIT = '8mb';

type Handler = (request: express.Request, signal: AbortSignal) => Promise<unknown>;

function sendError(response: express.Response, error: AppError): void {
  if (error.retryAfterSeconds !== undefined)
    response.setHeader('Retry-After', String(error.retryAfterSeconds));
  response.status(error.mapping.http).json(error.toJSON());
}

/** An abort signal that fires when the client goes away before the answer is sent. */
function requestSignal(request: express.Request, response: express.Response): AbortSignal {
  const controller = new AbortController();
  response.on('close', () => {
    if (!response.writableFinished) controller.abort(new AppError('CANCELED', 'the client disconnected'));
  });
  request.on('aborted', () => controller.abort(new AppError('CANCELED', 'the client disconnected')));
  return controller.signal;
}

/**
 * The /marketing router (mount with `app.use('/marketing', router)`):
 *
 * | method | path | body / query |
 * |---|---|---|
 * | POST | /personas/discover | {min_cluster_size, min_samples?, method?: 'hdbscan', lookback_days?} |
 * | GET | /personas | — |
 * | POST | /creatives/generate | {persona_id, format: social_post\|search_ad\|email\|display, count 1–5, campaign_id?} |
 * | GET | /creatives | ?approved=true\|false&compliance=compliant\|non_compliant&persona_id&campaign_id |
 * | POST | /budget/optimize | {arms \| campaign_ids, total_budget_minor, floors?, ceilings?, max_step?, seed?} |
 * | POST | /attribution/track | {lead_id \| journey_id, touchpoints[{url, occurred_at, referrer?}], conversion?, model?} |
 * | POST | /attribution/analyze | {model, paths \| path_file \| journey_csv} |
 * | POST | /compliance/check | {text, extra_classes?, llm_review?} |
 * | POST | /abtest | {control, variant, alpha?…} and/or {sample_size} |
 * | POST | /ltv | {rows[{frequency, recency, T, monetary_value}]} and/or {simple} |
 * | POST | /cycle | {min_cluster_size?, formats?, variants?, …} |
 * | GET | /campaigns | — |
 * | GET | /platform-requests | ?platform=meta\|google\|tiktok |
 */
export function createMarketingRouter(operations: MarketingOperations, log: Logger): express.Router {
  const router = express.Router();
  router.use(express.json({ limit: MARKETING_BODY_LIMIT, strict: true, type: () => true }));

  const route = (method: 'get' | 'post', path: string, handler: Handler): void => {
    router[method](path, (request, response, next) => {
      const signal = requestSignal(request, response);
      handler(request, signal).then(
        (body) => {
          if (!response.headersSent && !response.destroyed) response.status(200).json(body);
        },
        (error: unknown) => next(error),
      );
    });
  };
  const body = (request: express.Request): unknown => (request.body === undefined ? {} : request.body);

  route('post', '/personas/discover', (request, signal) =>
    operations.discoverPersonas(body(request), signal),
  );
  route('get', '/personas', () => operations.listPersonas());
  route('post', '/creatives/generate', (request, signal) =>
    operations.generateCreatives(body(request), signal),
  );
  route('get', '/creatives', (request) => operations.listCreatives({ ...request.query }));
  route('post', '/budget/optimize', (request) => operations.optimizeBudget(body(request)));
  route('post', '/attribution/track', (request, signal) => operations.trackJourney(body(request), signal));
  route('post', '/attribution/analyze', (request) => operations.analyzeAttribution(body(request)));
  route('post', '/compliance/check', (request, signal) => operations.checkCompliance(body(request), signal));
  route('post', '/abtest', (request) => operations.abtest(body(request)));
  route('post', '/ltv', (request, signal) => operations.ltv(body(request), signal));
  route('post', '/cycle', (request, signal) => operations.runCycle(body(request), signal));
  route('get', '/campaigns', () => operations.listCampaigns());
  route('get', '/platform-requests', (request) => operations.platformRequests({ ...request.query }));

  router.use((_request, response) => {
    sendError(response, new AppError('NOT_FOUND', 'no such marketing route'));
  });
  const errors: express.ErrorRequestHandler = (error: unknown, _request, response, _next) => {
    let appError: AppError;
    if (isAppError(error)) {
      appError = error;
    } else if (error instanceof SyntaxError || (error as { type?: string }).type === 'entity.parse.failed') {
      appError = new AppError('BAD_REQUEST', `body: malformed JSON (${(error as Error).message})`, {
        details: { field: 'body' },
      });
    } else if ((error as { type?: string }).type === 'entity.too.large') {
      appError = new AppError('PAYLOAD_TOO_LARGE', `body: larger than ${MARKETING_BODY_LIMIT}`, {
        details: { field: 'body' },
      });
    } else {
      log.error({ err: error }, 'marketing request failed');
      appError = new AppError('INTERNAL', 'internal error');
    }
    if (!response.headersSent && !response.destroyed) sendError(response, appError);
  };
  router.use(errors);
  return router;
}
