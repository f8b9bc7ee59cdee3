// Requests to Perch: the API key header, and errors turned into ApiError with the server's message.
import { auth } from "./auth.svelte";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    /** The request field the error is about, when the server names it. */
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

/** Reads either error shape: Perch's and OpenAI's `{"error":{"message"}}` or Ollama's `{"error":"..."}`. */
function errorOf(body: unknown): { message: string; param: string | null } | null {
  if (typeof body !== "object" || body === null || !("error" in body)) return null;
  const error = (body as { error: unknown }).error;
  if (typeof error === "string") return { message: error, param: null };
  if (typeof error === "object" && error !== null && "message" in error) {
    const { message, param } = error as { message: unknown; param?: unknown };
    return { message: String(message), param: typeof param === "string" ? param : null };
  }
  return null;
}

async function failure(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => "");
  let parsed: ReturnType<typeof errorOf> = null;
  try {
    parsed = errorOf(JSON.parse(text));
  } catch {
    // not JSON: the text itself (or the status) is the message
  }
  const message = parsed?.message ?? (text.trim() || `${res.status} ${res.statusText}`);
  return new ApiError(message, res.status, parsed?.param ?? null);
}

/** Sends a request with the API key; throws ApiError unless the answer is 2xx. */
export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  for (const [name, value] of Object.entries(auth.header())) headers.set(name, value);
  let res: Response;
  try {
    res = await fetch(path, { ...init, headers });
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError("Perch is not answering: is it running?", 0);
  }
  if (res.ok) return res;
  const error = await failure(res);
  if (res.status === 401) auth.refused(error.message);
  throw error;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await request(path)).json() as Promise<T>;
}

/** Sends `body` as JSON; resolves to the parsed answer, or undefined when the answer is empty. */
export async function sendJson<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const res = await request(path, {
    method,
    signal,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function isAbort(e: unknown): boolean {
  return e instanceof DOMException && e.name === "AbortError";
}
