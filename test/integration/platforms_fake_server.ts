// Local fake ad-platform server for the platform tests: express on 127.0.0.1 port 0 with scripted replies.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';

/** One request the fake received. */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** A scripted reply: status, JSON body, extra headers. */
export interface FakeReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** A running fake. */
export interface FakeServer {
  url: string;
  received: ReceivedRequest[];
  close(): Promise<void>;
}

/** Starts a fake that answers the n-th request (0-based) with `reply(n, request)`. */
export async function startFakePlatform(
  reply: (index: number, request: ReceivedRequest) => FakeReply,
): Promise<FakeServer> {
  const received: ReceivedRequest[] = [];
  const app = express();
  app.use(express.json({ limit: '10mb' }));
  app.use((req, res) => {
    const request = {
      method: req.method,
      path: req.originalUrl,
      headers: req.headers,
      body: req.body as unknown,
    };
    received.push(request);
    const answer = reply(received.length - 1, request);
    res
      .status(answer.status)
      .set(answer.headers ?? {})
      .json(answer.body ?? {});
  });
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    async close() {
      await new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}
