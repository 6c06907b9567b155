// A stand-in for the Anthropic API host, for the container test only
// (compose/test/egress.yml): serves HTTPS with a certificate of the test's
// own certificate authority and answers what `claude -p` asks for:
//
//   POST /v1/messages                 a canned Messages API reply, streamed
//                                     (server-sent events) when asked to
//   GET  /api/claude_code/settings    {}
//   GET  /api/claude_code/policy_limits {}
//
// Every other path is a 404. A request without the expected `x-api-key`
// (or `Authorization: Bearer`) gets the API's 401. Each request is logged
// as one JSON line on stdout (method, path, whether the key matched), so
// that the test can tell what reached it.
//
// Environment: STAND_IN_CERT and STAND_IN_KEY (PEM files), STAND_IN_REPLY
// (the text of every answer), STAND_IN_API_KEY (the key to expect),
// STAND_IN_PORT (default 443).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const reply = process.env.STAND_IN_REPLY ?? 'Hello from the stand-in.';
const apiKey = process.env.STAND_IN_API_KEY ?? '';
const port = Number(process.env.STAND_IN_PORT ?? 443);
const MAX_BODY = 4 << 20;

function json(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function presentedKey(req) {
  const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  return req.headers['x-api-key'] ?? bearer?.[1] ?? '';
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function message(model) {
  return {
    id: `msg_standin${Date.now()}`,
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text: reply }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 12, output_tokens: 8, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  };
}

/** The Messages API's streaming events for `message(model)`. */
function events(model) {
  const full = message(model);
  const start = { ...full, content: [], stop_reason: null, usage: { ...full.usage, output_tokens: 1 } };
  const half = Math.ceil(reply.length / 2);
  return [
    ['message_start', { type: 'message_start', message: start }],
    ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
    ['ping', { type: 'ping' }],
    ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: reply.slice(0, half) } }],
    ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: reply.slice(half) } }],
    ['content_block_stop', { type: 'content_block_stop', index: 0 }],
    ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 8 } }],
    ['message_stop', { type: 'message_stop' }],
  ];
}

async function messages(req, res) {
  let body = {};
  try {
    body = JSON.parse((await readBody(req)) || '{}');
  } catch {
    json(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'body is not JSON' } });
    return;
  }
  const model = typeof body.model === 'string' ? body.model : 'claude-stand-in';
  if (!body.stream) {
    json(res, 200, message(model));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  for (const [event, data] of events(model)) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  res.end();
}

async function handle(req, res) {
  const path = new URL(req.url ?? '/', 'https://stand-in').pathname;
  const keyOk = apiKey !== '' && presentedKey(req) === apiKey;
  console.log(JSON.stringify({ method: req.method, path, keyOk }));
  if (req.method === 'GET' && (path === '/api/claude_code/settings' || path === '/api/claude_code/policy_limits')) {
    json(res, 200, {});
  } else if (req.method === 'POST' && path === '/v1/messages') {
    if (!keyOk) {
      json(res, 401, { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } });
      return;
    }
    await messages(req, res);
  } else {
    json(res, 404, { type: 'error', error: { type: 'not_found_error', message: `no ${req.method} ${path} here` } });
  }
}

const server = createServer(
  { cert: readFileSync(process.env.STAND_IN_CERT), key: readFileSync(process.env.STAND_IN_KEY) },
  (req, res) => {
    handle(req, res).catch((error) => {
      console.log(JSON.stringify({ error: String(error) }));
      if (!res.headersSent) json(res, 500, { type: 'error', error: { type: 'api_error', message: 'stand-in failed' } });
      else res.destroy();
    });
  },
);
server.listen(port, '0.0.0.0', () => console.log(JSON.stringify({ listening: port })));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
