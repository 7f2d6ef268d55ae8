// A2A JSON-RPC over HTTP for a spoke: `POST /a2a` with the A2A-Version check, the body limit, JSON-RPC
// envelopes and errors, and Server-Sent Events for the streaming methods. The methods themselves are the
// task engine's, shared with the hub link.
import type { Request, Response } from 'express';
import express from 'express';
import { AppError, toAppError } from './errors.js';
import { isAsyncIterable } from './link.js';
import type { Logger } from './log.js';
import {
  A2A_VERSION,
  LIMITS,
  isA2aMethod,
  parseJsonRpcObject,
  toJsonRpcError,
  type JsonRpcErrorObject,
  type JsonRpcId,
} from './protocol.js';

/** JSON-RPC code of A2A's VersionNotSupportedError (A2A §9.5; it has no AppError code of its own). */
export const VERSION_NOT_SUPPORTED_CODE = -32009;

/** Serves one A2A method: a Promise of the result, or an AsyncIterable of stream events. */
export type A2aServe = (
  method: string,
  params: unknown,
  signal: AbortSignal,
) => Promise<unknown> | AsyncIterable<unknown>;

/** The requested A2A version: the `A2A-Version` header, else the query parameter; absent means 0.3 (A2A §3.6). */
function requestedVersion(request: Request): string {
  const header = request.get('A2A-Version');
  if (header !== undefined && header.trim() !== '') return header.trim();
  const query = request.query['A2A-Version'];
  return typeof query === 'string' && query !== '' ? query : '0.3';
}

function versionError(version: string): JsonRpcErrorObject {
  return {
    code: VERSION_NOT_SUPPORTED_CODE,
    message: `The requested A2A protocol version '${version}' is not supported; send A2A-Version: ${A2A_VERSION}`,
    data: [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'VERSION_NOT_SUPPORTED',
        domain: 'a2a-protocol.org',
        metadata: { requested: version, supported: A2A_VERSION },
      },
    ],
  };
}

/** HTTP status of a JSON-RPC error response: 200 like the A2A SDK, except server faults and oversized bodies. */
function statusOf(error: AppError): number {
  if (error.code === 'PAYLOAD_TOO_LARGE') return 413;
  if (error.code === 'INTERNAL') return 500;
  return 200;
}

function sendJsonRpcError(response: Response, requestId: JsonRpcId | null, error: AppError): void {
  response.status(statusOf(error)).json({ jsonrpc: '2.0', id: requestId, error: toJsonRpcError(error) });
}

/**
 * The express handler of `POST /a2a`. Reads the raw body itself (limit {@link LIMITS.maxHttpBodyBytes}) so a
 * malformed body is a JSON-RPC PARSE_ERROR and an oversized one is 413 PAYLOAD_TOO_LARGE. A client that goes
 * away aborts the request's signal (which cancels a task it created).
 */
export function createA2aHttpHandler(
  serve: A2aServe,
  log: Logger,
): [express.RequestHandler, express.ErrorRequestHandler, express.RequestHandler] {
  const readBody = express.text({ type: () => true, limit: LIMITS.maxHttpBodyBytes });
  const bodyErrors: express.ErrorRequestHandler = (error: unknown, _request, response, next) => {
    const status = (error as { status?: number }).status;
    if (status === 413) {
      sendJsonRpcError(
        response,
        null,
        new AppError('PAYLOAD_TOO_LARGE', `request body larger than ${LIMITS.maxHttpBodyBytes} bytes`, {
          details: { limitBytes: LIMITS.maxHttpBodyBytes },
        }),
      );
      return;
    }
    if (status !== undefined && status >= 400 && status < 500) {
      sendJsonRpcError(
        response,
        null,
        new AppError('PARSE_ERROR', `unreadable request body: ${(error as Error).message}`),
      );
      return;
    }
    next(error);
  };

  const handle: express.RequestHandler = (request, response) => {
    const text = typeof request.body === 'string' ? request.body : '';
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      sendJsonRpcError(
        response,
        null,
        new AppError('PARSE_ERROR', `body is not valid JSON: ${(error as Error).message}`),
      );
      return;
    }
    let requestId: JsonRpcId | null = null;
    let method: string;
    let params: unknown;
    try {
      const frame = parseJsonRpcObject(parsed);
      if (frame.kind !== 'request') {
        throw new AppError('INVALID_REQUEST', 'POST /a2a takes one JSON-RPC request with an id');
      }
      requestId = frame.id;
      method = frame.method;
      params = frame.params;
    } catch (error) {
      sendJsonRpcError(response, requestId, toAppError(error, 'INVALID_REQUEST'));
      return;
    }
    const version = requestedVersion(request);
    if (version !== A2A_VERSION) {
      response.status(200).json({ jsonrpc: '2.0', id: requestId, error: versionError(version) });
      return;
    }
    if (!isA2aMethod(method)) {
      sendJsonRpcError(response, requestId, new AppError('METHOD_NOT_FOUND', `unknown method ${method}`));
      return;
    }
    const controller = new AbortController();
    response.on('close', () => {
      if (!response.writableFinished) controller.abort(new AppError('CANCELED', 'the HTTP client went away'));
    });
    const id = requestId;
    void respond(id, method, params, controller.signal, response).catch((error: unknown) => {
      log.error({ err: error, method }, 'A2A HTTP response failed');
      if (!response.headersSent)
        sendJsonRpcError(response, id, new AppError('INTERNAL', `internal error while serving ${method}`));
      else response.end();
    });
  };

  async function respond(
    requestId: JsonRpcId,
    method: string,
    params: unknown,
    signal: AbortSignal,
    response: Response,
  ): Promise<void> {
    let answer: Promise<unknown> | AsyncIterable<unknown>;
    try {
      answer = serve(method, params, signal);
    } catch (error) {
      sendFailure(response, requestId, error, method);
      return;
    }
    if (!isAsyncIterable(answer)) {
      try {
        const result = await answer;
        response.status(200).json({ jsonrpc: '2.0', id: requestId, result });
      } catch (error) {
        sendFailure(response, requestId, error, method);
      }
      return;
    }
    const iterator = answer[Symbol.asyncIterator]();
    let first: IteratorResult<unknown>;
    try {
      first = await iterator.next();
    } catch (error) {
      // Nothing was streamed yet: answer with a plain JSON-RPC error, as the A2A SDK does.
      sendFailure(response, requestId, error, method);
      return;
    }
    response.status(200);
    response.setHeader('Content-Type', 'text/event-stream');
    response.setHeader('Cache-Control', 'no-cache');
    response.setHeader('Connection', 'keep-alive');
    response.flushHeaders();
    const writeEvent = (payload: unknown): void => {
      response.write(`data: ${JSON.stringify(payload)}\n\n`);
    };
    try {
      for (let step = first; !step.done; step = await iterator.next()) {
        if (signal.aborted) break;
        writeEvent({ jsonrpc: '2.0', id: requestId, result: step.value });
      }
    } catch (error) {
      if (!(error instanceof AppError)) log.error({ err: error, method }, 'A2A stream failed');
      writeEvent({ jsonrpc: '2.0', id: requestId, error: toJsonRpcError(sanitise(error, method)) });
    } finally {
      if (signal.aborted) void Promise.resolve(iterator.return?.()).catch(() => undefined);
      response.end();
    }
  }

  function sendFailure(response: Response, requestId: JsonRpcId, error: unknown, method: string): void {
    if (!(error instanceof AppError)) log.error({ err: error, method }, 'A2A method failed');
    sendJsonRpcError(response, requestId, sanitise(error, method));
  }

  return [readBody, bodyErrors, handle];
}

/** Keeps AppErrors as they are; anything else becomes INTERNAL without leaking its message. */
function sanitise(error: unknown, method: string): AppError {
  return error instanceof AppError
    ? error
    : new AppError('INTERNAL', `internal error while serving ${method}`);
}
