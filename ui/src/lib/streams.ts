// Reading streamed answers from fetch: NDJSON lines and server-sent events.

async function* textLines(res: Response, separator: string): AsyncGenerator<string> {
  if (!res.body) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, "\n");
      let at: number;
      while ((at = buffer.indexOf(separator)) >= 0) {
        yield buffer.slice(0, at);
        buffer = buffer.slice(at + separator.length);
      }
    }
    if (buffer.trim()) yield buffer;
  } finally {
    reader.releaseLock();
  }
}

/** Yields each JSON object of a newline-delimited JSON body. */
export async function* ndjson<T>(res: Response): AsyncGenerator<T> {
  for await (const line of textLines(res, "\n")) {
    if (line.trim()) yield JSON.parse(line) as T;
  }
}

/** Yields the data of each event of a `text/event-stream` body, parsed as JSON. */
export async function* sseJson<T>(res: Response): AsyncGenerator<T> {
  for await (const event of textLines(res, "\n\n")) {
    const data = event
      .split("\n")
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).replace(/^ /, ""))
      .join("\n");
    if (data) yield JSON.parse(data) as T;
  }
}
