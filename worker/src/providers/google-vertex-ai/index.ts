// Gemini on Vertex AI: Gemini's wire (the google-ai-studio module's translation, stream, usage
// and errors) at Vertex AI's endpoint with Vertex's credential; only the endpoint is its own.

import { geminiWire } from "../google-ai-studio";
import type { ChatProvider } from "../types";
import { authHeaders, generatePath } from "./endpoint";

export const googleVertexAi: ChatProvider = geminiWire(generatePath, authHeaders);

// What Gemini's own route uses for a Vertex model: its path and its credential.
export { authHeaders as vertexAuthHeaders, nativePath as vertexNativePath, PROVIDER } from "./endpoint";
