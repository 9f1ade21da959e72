// What the gateway reads of a request's body: the request path checks it (request/body.ts,
// request/fields.ts); pricing estimates from it and providers translate it.

/** What the chat route reads of OpenAI's Chat Completions body; the rest goes as it came. */
export interface ChatBody {
  [field: string]: unknown;
  model?: unknown;
  messages: readonly unknown[];
  stream?: boolean | null;
  stream_options?: { [field: string]: unknown; include_usage?: boolean } | null;
  n?: number | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
}

export interface ResponsesBody {
  [field: string]: unknown;
  model?: unknown;
  stream?: boolean | null;
  max_output_tokens?: number | null;
  previous_response_id?: string | null;
  conversation?: unknown;
}

export interface MessagesBody {
  [field: string]: unknown;
  model: string;
  max_tokens: number;
  stream?: boolean | null;
}
/** The body as parsed, its text, and its size in bytes (what the worst case is bounded by). */
export interface JsonBody {
  body: Record<string, unknown>;
  text: string;
  bytes: number;
}
