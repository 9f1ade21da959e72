// AWS's binary event stream framing (application/vnd.amazon.eventstream), as Bedrock writes it:
// total length, headers length, the prelude's CRC32, string headers, the payload, the message's
// CRC32 (node's zlib.crc32: an implementation apart from the Worker's decoder, so a test of one
// against the other checks both).
import { crc32 } from "node:zlib";

const PRELUDE_BYTES = 12;
const CRC_BYTES = 4;

/** One message; header values are strings (type 7), as Bedrock's are. */
export function encodeMessage(headers: Readonly<Record<string, string>>, payload: Uint8Array): Buffer {
  const headerParts = Object.entries(headers).map(([name, value]) => {
    const nameBytes = Buffer.from(name, "utf8");
    const valueBytes = Buffer.from(value, "utf8");
    const length = Buffer.alloc(2);
    length.writeUInt16BE(valueBytes.length);
    return Buffer.concat([Buffer.from([nameBytes.length]), nameBytes, Buffer.from([7]), length, valueBytes]);
  });
  const headerBytes = Buffer.concat(headerParts);
  const total = PRELUDE_BYTES + headerBytes.length + payload.length + CRC_BYTES;
  const out = Buffer.alloc(total);
  out.writeUInt32BE(total, 0);
  out.writeUInt32BE(headerBytes.length, 4);
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8);
  headerBytes.copy(out, PRELUDE_BYTES);
  Buffer.from(payload).copy(out, PRELUDE_BYTES + headerBytes.length);
  out.writeUInt32BE(crc32(out.subarray(0, total - CRC_BYTES)), total - CRC_BYTES);
  return out;
}

/** A Bedrock stream event: `:event-type` names it, the payload is its JSON. */
export function eventMessage(type: string, body: unknown): Buffer {
  const headers = { ":event-type": type, ":content-type": "application/json", ":message-type": "event" };
  return encodeMessage(headers, Buffer.from(JSON.stringify(body), "utf8"));
}

/** A Bedrock stream exception (`:message-type: exception`), e.g. throttlingException. */
export function exceptionMessage(type: string, message: string): Buffer {
  const headers = { ":exception-type": type, ":content-type": "application/json", ":message-type": "exception" };
  return encodeMessage(headers, Buffer.from(JSON.stringify({ message }), "utf8"));
}
