// Reference peer for parley-bench: the npm `ws` server echoing every message unchanged.
// Binds 127.0.0.1 on an ephemeral port (or the port given as argv[2]) and prints
// "listening on 127.0.0.1:PORT" once it accepts connections, the same line parleyd logs, and answers
// GET /healthz with 200 like parleyd, so `parley-bench start` and run-baseline.sh treat both alike.
// Exits on SIGTERM/SIGINT.
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const port = process.argv[2] ? Number(process.argv[2]) : 0;
const server = http.createServer((req, res) => {
  const ok = req.url === '/healthz';
  res.writeHead(ok ? 200 : 404, { 'Content-Type': 'text/plain', 'Connection': 'close' });
  res.end(ok ? 'ok\n' : 'not found\n');
});
// perMessageDeflate off: parleyd does not compress either, and deflate would dominate the profile.
// clientTracking off: nothing here needs the set of clients, and it costs memory per connection.
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 1 << 20,
  clientTracking: false });

wss.on('connection', (sock) => {
  sock.on('message', (data, isBinary) => sock.send(data, { binary: isBinary }));
  sock.on('error', () => sock.terminate());
});
server.on('error', (err) => {
  process.stderr.write(`ws-echo: ${err.message}\n`);
  process.exit(1);
});
// backlog 4096 so a connect burst of thousands is not dropped by the kernel's accept queue.
server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => {
  process.stdout.write(`listening on 127.0.0.1:${server.address().port}\n`);
});
// Exit at once: open client sockets would keep a graceful close waiting.
const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
