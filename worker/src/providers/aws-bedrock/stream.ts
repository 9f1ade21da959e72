// A Bedrock ConverseStream (AWS's binary event stream) → OpenAI chat chunks, message by message
// as the bytes arrive: messageStart opens the assistant turn, a text delta is content, a toolUse
// block is a tool call whose input pieces are its `arguments` (or, for a structured-output
// request, the content), messageStop closes with the finish_reason, `metadata` brings the usage
// (the usage chunk when the client asked for it) and ends the stream with `[DONE]`. An exception
// message (throttlingException, modelStreamErrorException, …) becomes `data: {"error": …}`,
// which the OpenAI SDKs raise. A stream cut before `metadata`, or bytes that are not a whole,
// checksummed message, end with that error too, and the output so far is estimated.

import { chatChunks } from "../chat-shapes";
import { meteredFrames } from "../frames";
import { chatStreamError } from "../sse";
import type { MeteredStream } from "../types";
import { type EventMessage, EventStreamDecoder } from "./eventstream";
import { blockOutput, finishReason } from "./response";
import { type BedrockUsage, readUsage } from "./usage";

interface StreamEvent {
  contentBlockIndex?: number;
  start?: { toolUse?: { toolUseId?: string; name?: string } };
  delta?: { text?: string; toolUse?: { input?: string }; reasoningContent?: { text?: string } };
  stopReason?: unknown;
  usage?: BedrockUsage;
  message?: string;
}

const utf8 = new TextDecoder();

export function translateStream(
  upstream: ReadableStream<Uint8Array>,
  {
    model,
    clientWantsUsage,
    jsonAnswer,
    signal,
  }: { model: string; clientWantsUsage: boolean; jsonAnswer: boolean; signal?: AbortSignal | undefined },
): MeteredStream {
  const id = `chatcmpl-${crypto.randomUUID().replaceAll("-", "")}`;
  const chunks = chatChunks(() => ({ id, model }));
  const decoder = new EventStreamDecoder();
  let usage: BedrockUsage | null = null;
  let text = "";
  let ended = false; // metadata (or an exception) came: nothing is missing
  let broken: string | null = null;
  let tools = 0;
  const toolIndex = new Map<number, number>(); // Bedrock block index → OpenAI tool-call index

  const translate = ({ headers, payload }: EventMessage): string => {
    let data: StreamEvent;
    try {
      data = JSON.parse(utf8.decode(payload)) as StreamEvent;
    } catch {
      return ""; // not JSON: nothing to translate
    }
    if (headers[":message-type"] === "exception") {
      ended = true; // the provider said why in-band: passed on
      const type = String(headers[":exception-type"] ?? "internalServerException");
      const error = { message: data.message ?? "The model provider failed mid-stream.", type: "api_error", code: type };
      return `data: ${JSON.stringify({ error })}\n\n`;
    }
    const index = data.contentBlockIndex ?? -1;
    switch (headers[":event-type"]) {
      case "messageStart":
        return chunks.delta({ role: "assistant", content: "" });
      case "contentBlockStart": {
        const use = data.start?.toolUse;
        if (!use || jsonAnswer) return "";
        const k = tools++;
        toolIndex.set(index, k);
        return chunks.delta({
          tool_calls: [{ index: k, id: use.toolUseId, type: "function", function: { name: use.name, arguments: "" } }],
        });
      }
      case "contentBlockDelta": {
        const delta = data.delta ?? {};
        text += blockOutput({
          text: delta.text,
          reasoningContent: { reasoningText: { text: delta.reasoningContent?.text } },
        });
        if (typeof delta.text === "string") return chunks.delta({ content: delta.text });
        const piece = delta.toolUse?.input;
        if (typeof piece !== "string") return ""; // reasoning has no OpenAI field
        text += piece;
        if (jsonAnswer) return piece ? chunks.delta({ content: piece }) : "";
        const k = toolIndex.get(index);
        return k === undefined ? "" : chunks.delta({ tool_calls: [{ index: k, function: { arguments: piece } }] });
      }
      case "messageStop":
        return chunks.delta({}, finishReason(data.stopReason, jsonAnswer));
      case "metadata": {
        ended = true;
        usage = data.usage ?? null;
        const tokens = readUsage(usage);
        return `${clientWantsUsage && tokens ? chunks.usage(tokens) : ""}data: [DONE]\n\n`;
      }
      default:
        return ""; // contentBlockStop
    }
  };

  const framing = {
    feed(bytes: Uint8Array): string {
      if (broken !== null || ended) return "";
      let out = "";
      for (const message of decoder.push(bytes)) out += translate(message);
      broken = decoder.failure;
      return out;
    },
    end(): string {
      if (ended || signal?.aborted) return "";
      console.error(JSON.stringify({ event: "upstream_stream_cut", pendingBytes: decoder.pending() }));
      return chatStreamError();
    },
    broken: () => broken,
    refused: () => chatStreamError(),
  };
  return meteredFrames(upstream, framing, signal, () => ({
    usage: readUsage(usage),
    text,
    complete: usage !== null,
  }));
}
