// AWS's binary event stream (application/vnd.amazon.eventstream), decoded as bytes arrive.
// Each message: total length (uint32 BE), headers length (uint32 BE), the CRC32 of those eight
// bytes, the headers, the payload, and the CRC32 of everything before it. A message may arrive
// split anywhere, several may arrive in one chunk; a CRC that does not match, or lengths that
// cannot be a message, end the stream as corrupt: nothing after it is believed.

const PRELUDE_BYTES = 12;
const CRC_BYTES = 4;
const MIN_MESSAGE_BYTES = PRELUDE_BYTES + CRC_BYTES;
// AWS's own bounds (a message up to 16 MiB, its headers up to 128 KiB)
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const MAX_HEADERS_BYTES = 128 * 1024;

export type HeaderValue = string | number | boolean | bigint | Uint8Array;

export interface EventMessage {
  headers: Record<string, HeaderValue>;
  payload: Uint8Array;
}

export class EventStreamError extends Error {}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3), as the event stream's checksums are. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) crc = (CRC_TABLE[(crc ^ (bytes[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function text(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new EventStreamError("An event stream header is not UTF-8.");
  }
}

function parseHeaders(bytes: Uint8Array): Record<string, HeaderValue> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headers: Record<string, HeaderValue> = {};
  let at = 0;
  const need = (n: number) => {
    if (at + n > bytes.length) throw new EventStreamError("An event stream header runs past its message.");
  };
  while (at < bytes.length) {
    need(1);
    const nameLength = bytes[at] as number;
    at += 1;
    need(nameLength + 1);
    const name = text(bytes.subarray(at, at + nameLength));
    at += nameLength;
    const type = bytes[at] as number;
    at += 1;
    let value: HeaderValue;
    switch (type) {
      case 0:
        value = true;
        break;
      case 1:
        value = false;
        break;
      case 2:
        need(1);
        value = view.getInt8(at);
        at += 1;
        break;
      case 3:
        need(2);
        value = view.getInt16(at);
        at += 2;
        break;
      case 4:
        need(4);
        value = view.getInt32(at);
        at += 4;
        break;
      case 5:
      case 8: // a timestamp: milliseconds since the epoch
        need(8);
        value = view.getBigInt64(at);
        at += 8;
        break;
      case 6:
      case 7: {
        need(2);
        const length = view.getUint16(at);
        at += 2;
        need(length);
        const raw = bytes.subarray(at, at + length);
        value = type === 7 ? text(raw) : raw.slice();
        at += length;
        break;
      }
      case 9:
        need(16);
        value = bytes.slice(at, at + 16);
        at += 16;
        break;
      default:
        throw new EventStreamError(`Unknown event stream header type ${type}.`);
    }
    headers[name] = value;
  }
  return headers;
}

/**
 * Feeds bytes in as they arrive; hands out each message once it is whole and its CRCs match.
 * A message that cannot be (a checksum that does not match, an impossible length) stops the
 * decoder: the messages before it are handed out, `failure` says why, nothing after is read.
 */
export class EventStreamDecoder {
  private buffer = new Uint8Array(0);
  private failed: string | null = null;

  /** Why the stream is corrupt, once it is; null while it is not. */
  get failure(): string | null {
    return this.failed;
  }

  push(chunk: Uint8Array): EventMessage[] {
    if (this.failed !== null) return [];
    if (chunk.length > 0) {
      const joined = new Uint8Array(this.buffer.length + chunk.length);
      joined.set(this.buffer);
      joined.set(chunk, this.buffer.length);
      this.buffer = joined;
    }
    const messages: EventMessage[] = [];
    try {
      for (let message = this.next(); message !== null; message = this.next()) messages.push(message);
    } catch (err) {
      if (!(err instanceof EventStreamError)) throw err;
      this.failed = err.message;
      this.buffer = new Uint8Array(0);
    }
    return messages;
  }

  /** Bytes left over that are not a whole message (a stream cut mid-message). */
  pending(): number {
    return this.buffer.length;
  }

  /** The next whole message in the buffer (taken out of it), or null until one is. */
  private next(): EventMessage | null {
    if (this.buffer.length < PRELUDE_BYTES) return null;
    const view = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength);
    const total = view.getUint32(0);
    const headersLength = view.getUint32(4);
    if (crc32(this.buffer, 0, 8) !== view.getUint32(8)) {
      throw new EventStreamError("An event stream message's prelude checksum does not match.");
    }
    if (total < MIN_MESSAGE_BYTES || total > MAX_MESSAGE_BYTES || headersLength > MAX_HEADERS_BYTES) {
      throw new EventStreamError(`An event stream message cannot be ${total} bytes long.`);
    }
    if (PRELUDE_BYTES + headersLength + CRC_BYTES > total) {
      throw new EventStreamError("An event stream message's headers are longer than the message.");
    }
    if (this.buffer.length < total) return null;
    if (crc32(this.buffer, 0, total - CRC_BYTES) !== view.getUint32(total - CRC_BYTES)) {
      throw new EventStreamError("An event stream message's checksum does not match.");
    }
    const headers = parseHeaders(this.buffer.subarray(PRELUDE_BYTES, PRELUDE_BYTES + headersLength));
    const payload = this.buffer.slice(PRELUDE_BYTES + headersLength, total - CRC_BYTES);
    this.buffer = this.buffer.slice(total);
    return { headers, payload };
  }
}
