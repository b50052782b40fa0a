import { RingStoreError } from '../errors.js';
import { eventCrc } from '../model/events.js';
import type { ExpectedVersion } from '../types.js';
import { eventListOf } from './event-list.js';
import type { AppendBatch, AppendEvent } from './types.js';

/**
 * The bytes of one JetStream message of a domain stream: one generation, all of its batches or none
 * (docs/CLUSTER.md, "The message"). The same codec carries a put forwarded to a domain's owner (one
 * batch, with the client's expected version as given).
 *
 *   u32 headerLength · header (UTF-8 JSON) · for each event in order: data bytes, metadata bytes
 *
 * header: { v: 1, d: domain, n: node id, m: message id, t: timestamp (ms),
 *           b: [{ a: aggregate type, i: id (decimal), e: expected version, k?: key,
 *                 ev: [[type, dataLength, metadataLength, crc], …] }, …] }
 *
 * Decoding checks every event's CRC against its bytes: a damaged message is never applied.
 */
export interface GenerationMessage {
  domain: string;
  /** The node that published it (the domain's owner at the time). */
  node: string;
  /** Unique per message: lets its publisher recognise it in the stream after an unanswered publish. */
  id: string;
  timestamp: number;
  batches: AppendBatch[];
}

const FORMAT_VERSION = 1;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

type EventHead = [string, number, number, number];
interface BatchHead {
  a: string;
  i: string;
  e: ExpectedVersion;
  k?: string;
  ev: EventHead[];
}

/** Bytes the encoded message takes, without encoding it. */
export function payloadBytes(batches: readonly AppendBatch[]): number {
  let bytes = 0;
  for (const batch of batches) {
    const events = eventListOf(batch.events);
    for (let i = 0; i < events.length; i++) bytes += events.dataBytes(i) + events.metadataBytes(i);
  }
  return bytes;
}

export function encodeGenerationMessage(message: GenerationMessage): Uint8Array {
  const b: BatchHead[] = message.batches.map((batch) => {
    const head: BatchHead = {
      a: batch.aggregateType,
      i: batch.aggregateId.toString(),
      e: batch.expectedVersion,
      ev: eventHeads(batch),
    };
    if (batch.idempotencyKey !== undefined) head.k = batch.idempotencyKey;
    return head;
  });
  const header = utf8.encode(
    JSON.stringify({
      v: FORMAT_VERSION,
      d: message.domain,
      n: message.node,
      m: message.id,
      t: message.timestamp,
      b,
    }),
  );
  const out = new Uint8Array(4 + header.byteLength + payloadBytes(message.batches));
  new DataView(out.buffer).setUint32(0, header.byteLength);
  out.set(header, 4);
  let at = 4 + header.byteLength;
  for (const batch of message.batches) at += eventListOf(batch.events).copyPayloads(out, at);
  return out;
}

function eventHeads(batch: AppendBatch): EventHead[] {
  const events = eventListOf(batch.events);
  const heads: EventHead[] = new Array(events.length);
  for (let i = 0; i < events.length; i++) {
    heads[i] = [events.type(i), events.dataBytes(i), events.metadataBytes(i), events.crc(i)];
  }
  return heads;
}

function damaged(why: string): RingStoreError {
  return new RingStoreError('CORRUPT_DATA', `a cluster message is damaged: ${why}`);
}

export function decodeGenerationMessage(bytes: Uint8Array): GenerationMessage {
  if (bytes.byteLength < 4) throw damaged('shorter than its header length');
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  if (4 + headerLength > bytes.byteLength) throw damaged('header past the end');
  let header: { v: unknown; d: unknown; n: unknown; m: unknown; t: unknown; b: unknown };
  try {
    header = JSON.parse(utf8Decoder.decode(bytes.subarray(4, 4 + headerLength)));
  } catch {
    throw damaged('header is not JSON');
  }
  if (header.v !== FORMAT_VERSION) throw damaged(`unknown message version ${String(header.v)}`);
  if (typeof header.d !== 'string' || typeof header.n !== 'string' || typeof header.m !== 'string') {
    throw damaged('header fields');
  }
  if (typeof header.t !== 'number' || !Array.isArray(header.b)) throw damaged('header fields');
  let at = 4 + headerLength;
  const batches: AppendBatch[] = (header.b as BatchHead[]).map((head) => {
    const events: AppendEvent[] = head.ev.map(([type, dataLength, metadataLength, crc]) => {
      if (at + dataLength + metadataLength > bytes.byteLength) throw damaged('payload past the end');
      const data = bytes.subarray(at, at + dataLength);
      at += dataLength;
      const metadata = bytes.subarray(at, at + metadataLength);
      at += metadataLength;
      const event = { type, data, metadata, crc };
      if (eventCrc(event) !== crc) throw damaged('an event fails its CRC');
      return event;
    });
    return {
      domain: header.d as string,
      aggregateType: head.a,
      aggregateId: BigInt(head.i),
      expectedVersion: head.e,
      idempotencyKey: head.k,
      events,
    };
  });
  if (at !== bytes.byteLength) throw damaged('bytes after the last event');
  return { domain: header.d, node: header.n, id: header.m, timestamp: header.t, batches };
}
