// Gemini's own API for Gemini clients (google-genai, the Gemini CLI): passed through to AI
// Gateway's google-ai-studio endpoint. Answers and SSE streams go back as they came; the meter
// reads usageMetadata (the event with the finishReason carries the whole), and Google's errors
// keep Google's words, except that a key Google refuses is ours (502) and AI Gateway's own
// errors are AI Gateway's.

import { HttpError } from "../../lib/errors";
import { cleanMessage, credentialsError, errorJson, gatewayError } from "../gateway";
import { type EventSourceMessage, watchedEvents } from "../sse";
import type { Answer, MeteredStream } from "../types";
import { API_VERSION, PROVIDER } from "./endpoint";
import { googleError } from "./errors";
import { type Candidate, partsOf, partsOutput } from "./output";
import { type GeminiUsage, readUsage } from "./usage";

export const GEMINI_METHODS = ["generateContent", "streamGenerateContent", "countTokens"] as const;
export type GeminiMethod = (typeof GEMINI_METHODS)[number];

/** The upstream path of a model's method (a stream always as SSE). */
export function nativePath(model: string, method: GeminiMethod): string {
  const query = method === "streamGenerateContent" ? "?alt=sse" : "";
  return `${PROVIDER}/${API_VERSION}/models/${encodeURIComponent(model)}:${method}${query}`;
}

export function geminiAnswer(raw: string): Answer {
  try {
    const response = JSON.parse(raw) as { usageMetadata?: GeminiUsage };
    return { text: raw, said: partsOutput(partsOf(response)), usage: readUsage(response.usageMetadata) };
  } catch {
    return { text: raw, said: raw, usage: null };
  }
}

/** Google's error as a Gemini client should see it: its status and words. */
export async function geminiPassthroughError(response: Response): Promise<HttpError> {
  const body = await errorJson(response);
  const fromGateway = gatewayError(body);
  if (fromGateway) return fromGateway;
  const error = googleError(body);
  const reasons = (error?.details ?? []).map((d) => d?.reason);
  if (response.status === 401 || response.status === 403 || reasons.includes("API_KEY_INVALID")) {
    return credentialsError();
  }
  const message = cleanMessage(String(error?.message ?? `Gemini answered HTTP ${response.status}.`));
  return new HttpError(response.status, message, { providerType: error?.status });
}

/** Gemini's in-band stream error (the SDKs raise on an event that is an error). */
function geminiStreamError(): string {
  const error = { code: 502, message: "The model's stream ended before it was complete.", status: "UNAVAILABLE" };
  return `data: ${JSON.stringify({ error })}\r\n\r\n`;
}

/** The stream passed through; usage from every event's usageMetadata, text from the parts. */
export function meterGeminiStream(upstream: ReadableStream<Uint8Array>, signal?: AbortSignal): MeteredStream {
  let usage: GeminiUsage | null = null;
  let finished = false; // the event with a finishReason came: its usage is the whole
  let stopped = false; // that, or Google's own in-band error (nothing to add to it)
  let text = "";
  const event = (message: EventSourceMessage): void => {
    try {
      const data = JSON.parse(message.data) as { candidates?: Candidate[]; usageMetadata?: GeminiUsage };
      if (googleError(data)) {
        stopped = true;
        return;
      }
      text += partsOutput(partsOf(data));
      if (data.usageMetadata) usage = data.usageMetadata;
      const reason = data.candidates?.[0]?.finishReason;
      finished ||= reason !== undefined && reason !== null;
      stopped ||= finished;
    } catch {
      // malformed: metered from what came before
    }
  };
  const watch = { event, complete: () => stopped, truncated: () => geminiStreamError() };
  return watchedEvents(upstream, watch, signal, () => ({ usage: readUsage(usage), text, complete: finished }));
}
