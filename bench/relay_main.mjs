// The floor under bench/hub_routing.ts's figures: a bare relay process that does only what any Node hub must do
// per routed message (parse a JSON-RPC request, forward it to the answering peer as a stream request, collect
// the stream, answer the caller), with none of the hub's routing features, for callers on a WebSocket (the
// spoke → hub → spoke floor) and on HTTP (`POST /a2a`, the HTTP floor). Frames of one event-loop turn leave
// corked in one write, as the link does. Plain JavaScript, so it runs on bare node like the compiled hub.
// Started by bench/hub_routing.ts: RELAY_PORT (callers connect here), RELAY_ANSWERER_URL (the answering peer).
// GET /cpu on RELAY_PORT reports {"userUs","systemUs","relayed"}.
import { Buffer } from 'node:buffer';
import { createServer } from 'node:http';
import process from 'node:process';
import { setImmediate } from 'node:timers';
import { WebSocket, WebSocketServer } from 'ws';

const port = Number(process.env.RELAY_PORT);
const answererUrl = process.env.RELAY_ANSWERER_URL ?? '';
let relayed = 0;

/**
 * Sends frames through `ws`, corking its TCP socket until the end of the turn.
 * @param {WebSocket} socket
 * @returns {(frame: string) => void}
 */
function corkedSender(socket) {
  /** @type {import('node:stream').Writable | undefined} */
  let corked;
  const uncork = () => {
    const stream = corked;
    corked = undefined;
    stream?.uncork();
  };
  return (frame) => {
    if (corked === undefined) {
      const stream = /** @type {{ _socket?: import('node:stream').Writable | null }} */ (socket)._socket;
      if (stream !== undefined && stream !== null) {
        stream.cork();
        corked = stream;
        setImmediate(uncork);
      }
    }
    socket.send(frame);
  };
}

const answerer = new WebSocket(answererUrl, { perMessageDeflate: false });
const sendToAnswerer = corkedSender(answerer);
/** Outgoing id → the caller's sender, its request id and the stream's last result. */
const pending = new Map();
let nextId = 1;

answerer.on('message', (data) => {
  const frame = JSON.parse(data.toString());
  const call = pending.get(frame.id);
  if (call === undefined) return;
  if (frame.streamEnd === true) {
    pending.delete(frame.id);
    relayed += 1;
    call.reply(JSON.stringify({ jsonrpc: '2.0', id: call.id, result: call.last }));
  } else {
    call.last = frame.result;
  }
});

/**
 * POST /a2a: the body (a JSON-RPC request) goes to the answerer as a stream request; the answer is its last
 * result, as JSON.
 * @param {import('node:http').IncomingMessage} req
 * @param {import('node:http').ServerResponse} res
 */
function relayHttp(req, res) {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const id = `r${nextId++}`;
    pending.set(id, {
      reply: (text) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      },
      id: request.id,
      last: undefined,
    });
    sendToAnswerer(
      JSON.stringify({ jsonrpc: '2.0', id, method: 'SendStreamingMessage', params: request.params }),
    );
  });
}

const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/a2a') {
    relayHttp(req, res);
    return;
  }
  const usage = process.cpuUsage();
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ userUs: usage.user, systemUs: usage.system, relayed }));
});
const callers = new WebSocketServer({ server, perMessageDeflate: false });
callers.on('connection', (socket) => {
  const reply = corkedSender(socket);
  socket.on('message', (data) => {
    const request = JSON.parse(data.toString());
    const id = `r${nextId++}`;
    pending.set(id, { reply, id: request.id, last: undefined });
    sendToAnswerer(
      JSON.stringify({ jsonrpc: '2.0', id, method: 'SendStreamingMessage', params: request.params }),
    );
  });
});
answerer.once('open', () => server.listen(port, '127.0.0.1'));
process.on('SIGTERM', () => {
  answerer.close();
  server.close();
  callers.close();
  process.exit(0);
});
