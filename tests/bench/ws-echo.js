// Reference peer for parley-bench: the npm `ws` server echoing every message unchanged.
// Binds 127.0.0.1 on an ephemeral port (or the port given as argv[2]) and prints
// "listening on 127.0.0.1:PORT" once it accepts connections, the same line parleyd prints,
// so run-baseline.sh reads both the same way. Stops cleanly on SIGTERM/SIGINT.
'use strict';
const { WebSocketServer } = require('ws');

const port = process.argv[2] ? Number(process.argv[2]) : 0;
// perMessageDeflate off: parleyd does not compress either, and deflate would dominate the profile.
// backlog 4096 so a connect burst of thousands is not dropped by the kernel's accept queue.
const wss = new WebSocketServer({ host: '127.0.0.1', port, backlog: 4096, perMessageDeflate: false,
  maxPayload: 1 << 20, clientTracking: false });

wss.on('connection', (sock) => {
  sock.on('message', (data, isBinary) => sock.send(data, { binary: isBinary }));
  sock.on('error', () => sock.terminate());
});
wss.on('listening', () => {
  process.stdout.write(`listening on 127.0.0.1:${wss.address().port}\n`);
});
wss.on('error', (err) => {
  process.stderr.write(`ws-echo: ${err.message}\n`);
  process.exit(1);
});
// Exit at once: open client sockets would keep a graceful close waiting.
const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
