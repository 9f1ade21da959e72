// Usage capture: token counts from the upstream answer, a bounded estimate of the prompt for
// admission, and a metered pass-through of SSE streams (event by event, never the whole body).

const encoder = new TextEncoder();
const CONTENT = /"delta":\{[^{}]*?"content":"((?:[^"\\]|\\.)*)"/g; // every choice's delta
const USAGE_NULL = '"usage":null';
const USAGE_NULL_FIELD = /,"usage":null|"usage":null,?/;

function textOf(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((part) => (typeof part?.text === "string" ? part.text : "")).join("");
  return "";
}

function bytes(text) {
  return encoder.encode(text).length;
}

// An image costs tokens by its size, not by the bytes of its URL. Upper bound of one image in
// OpenAI's dearest scheme (gpt-4o-mini, 2048×2048 high detail: 2,833 + 8 tiles × 5,667).
const IMAGE_TOKENS_BOUND = 48_200;

function imageParts(messages) {
  let count = 0;
  for (const message of messages) {
    if (Array.isArray(message?.content)) {
      count += message.content.filter((part) => part?.type === "image_url" || part?.type === "input_image").length;
    }
  }
  return count;
}

/**
 * An upper bound of the prompt's tokens, for worst-case reservations: a token is at least one
 * byte of the serialized messages (plus tools), each message costs a few tokens of framing, and
 * each image at most IMAGE_TOKENS_BOUND.
 */
export function promptTokensBound(body) {
  const serialized = JSON.stringify(body.messages) + (body.tools ? JSON.stringify(body.tools) : "");
  return 3 + 4 * body.messages.length + bytes(serialized) + IMAGE_TOKENS_BOUND * imageParts(body.messages);
}

/** The usual four-bytes-per-token guess, used only when upstream reports no usage. */
export function estimateTokens(text) {
  return Math.ceil(bytes(text) / 4);
}

export function estimatePromptTokens(body) {
  return 3 + body.messages.reduce((sum, m) => sum + 4 + estimateTokens(textOf(m?.content)), 0);
}

/** OpenAI `usage` → our counts (null when absent or malformed). */
export function readUsage(usage) {
  if (!usage || typeof usage.prompt_tokens !== "number" || typeof usage.completion_tokens !== "number") {
    return null;
  }
  return {
    promptTokens: usage.prompt_tokens,
    completionTokens: usage.completion_tokens,
    cachedTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
  };
}

/**
 * Pass an OpenAI SSE stream through event by event while capturing usage and the streamed
 * text. When the client did not ask for usage, the extra usage chunk (and the `usage: null`
 * field of every chunk) is removed again, so the client sees what OpenAI would send it.
 * `done` resolves when the stream ends, breaks, or the client goes away (`signal`, the
 * request's: aborting it also stops reading upstream, so a gone client costs no more tokens).
 */
export function meterStream(upstream, { clientWantsUsage, signal }) {
  const decoder = new TextDecoder();
  let buffer = "";
  let usage = null;
  let text = "";
  let settle;
  const done = new Promise((resolve) => (settle = resolve));
  const finish = () => settle({ usage, text });

  // Most events are plain content chunks: read them with string operations and only parse
  // JSON for the rare usage chunk (parsing every chunk halved streaming throughput).
  const rewrite = (event) => {
    if (!event.startsWith("data:")) return event;
    const data = event.slice(5).trim();
    if (data === "[DONE]") return event;
    if (data.includes('"usage":{')) {
      let chunk;
      try {
        chunk = JSON.parse(data);
      } catch {
        return event;
      }
      usage = readUsage(chunk.usage) ?? usage;
      for (const choice of chunk.choices ?? []) {
        if (typeof choice?.delta?.content === "string") text += choice.delta.content;
      }
      if (clientWantsUsage) return event;
      if ((chunk.choices ?? []).length === 0) return ""; // the extra usage chunk
      delete chunk.usage;
      return `data: ${JSON.stringify(chunk)}\n\n`;
    }
    for (const [, content] of data.matchAll(CONTENT)) {
      text += content.includes("\\") ? JSON.parse(`"${content}"`) : content;
    }
    if (clientWantsUsage || !data.includes(USAGE_NULL)) return event;
    return `data: ${data.replace(USAGE_NULL_FIELD, "")}\n\n`;
  };

  signal?.addEventListener("abort", finish, { once: true });
  const metered = new TransformStream({
    transform(value, controller) {
      buffer += decoder.decode(value, { stream: true }).replaceAll("\r\n", "\n");
      let out = "";
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        out += rewrite(buffer.slice(0, end + 2));
        buffer = buffer.slice(end + 2);
      }
      if (out) controller.enqueue(encoder.encode(out));
    },
    flush(controller) {
      buffer += decoder.decode();
      if (buffer) controller.enqueue(encoder.encode(rewrite(buffer)));
      finish();
    },
    cancel() {
      finish();
    },
  });
  const stream = upstream.pipeThrough(metered, signal ? { signal } : {});
  return { stream, done };
}
