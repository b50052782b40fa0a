/**
 * Reads a server-sent event stream from a fetch body. EventSource cannot send an Authorization
 * header, so the console reads the stream itself: each complete message is passed to `onMessage`
 * as { event, id, data } (event 'message' when the stream names none); comments are skipped.
 */
export async function readEventStream(body, onMessage) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let message = { event: 'message', id: undefined, data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end = buffer.indexOf('\n');
    while (end >= 0) {
      const line = buffer.slice(0, end).replace(/\r$/, '');
      buffer = buffer.slice(end + 1);
      if (line === '') {
        if (message.data.length > 0) onMessage({ ...message, data: message.data.join('\n') });
        message = { event: 'message', id: undefined, data: [] };
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (name === 'data') message.data.push(text);
        else if (name === 'event') message.event = text;
        else if (name === 'id') message.id = text;
      }
      end = buffer.indexOf('\n');
    }
  }
}
