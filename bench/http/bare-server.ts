import { createServer } from 'node:http';

/**
 * The ceiling of the HTTP load test: a bare node:http server that reads each body, JSON.parses it
 * (each line, for NDJSON) and answers 204. No validation, no storage, no framework: what ringstore
 * is compared with is the cost of HTTP plus JSON parsing alone on this machine.
 */
const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    if (chunks.length > 0) {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        if (request.headers['content-type']?.startsWith('application/x-ndjson')) {
          for (const line of text.split('\n')) if (line.length > 0) JSON.parse(line);
        } else {
          JSON.parse(text);
        }
      } catch {
        response.writeHead(400).end();
        return;
      }
    }
    response.writeHead(204).end();
  });
});
server.keepAliveTimeout = 5_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  process.stdout.write(
    `${JSON.stringify({ msg: 'bare listening', url: `http://127.0.0.1:${address.port}` })}\n`,
  );
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
