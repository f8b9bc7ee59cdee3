// Asking a model: streams an answer from /api/chat into the open conversation, with Stop and Regenerate.
import { isAbort, messageOf, request } from "./api";
import { conversations, type AnswerStats, type Conversation, type Turn } from "./conversations.svelte";
import { models } from "./models.svelte";
import { ndjson } from "./streams";
import type { ChatChunk, ChatMessage } from "./types";

const NO_STATS: AnswerStats = {
  ttft_ms: null,
  tokens: null,
  tokens_per_second: null,
  load_seconds: null,
  done_reason: null,
};

class Chat {
  /** The conversation being answered now, if any; one answer streams at a time. */
  answering = $state<string | null>(null);
  private abort: AbortController | null = null;

  /** Sends `text` in the open conversation (or a new one, with `model`). */
  async send(text: string, model: string) {
    if (this.answering || !text.trim()) return;
    const conversation = conversations.open ?? conversations.start(model, text);
    conversation.turns.push({ role: "user", content: text });
    await this.answer(conversation);
  }

  /** Drops the last answer and asks again. */
  async regenerate() {
    const conversation = conversations.open;
    if (this.answering || !conversation) return;
    if (conversation.turns.at(-1)?.role === "assistant") conversation.turns.pop();
    await this.answer(conversation);
  }

  stop() {
    this.abort?.abort();
  }

  private async answer(conversation: Conversation) {
    const messages: ChatMessage[] = conversation.turns
      .filter((t) => !t.error)
      .map((t) => ({ role: t.role, content: t.content }));
    conversation.turns.push({ role: "assistant", content: "" });
    const turn: Turn = conversation.turns[conversation.turns.length - 1];
    conversation.updated = Date.now();
    this.answering = conversation.id;
    this.abort = new AbortController();
    try {
      if (!models.isLoaded(conversation.model) && !(await models.load(conversation.model))) {
        throw new Error(`${conversation.model} could not be loaded`);
      }
      await this.stream(conversation.model, messages, turn, this.abort.signal);
    } catch (e) {
      if (isAbort(e)) turn.stopped = true;
      else turn.error = messageOf(e);
    } finally {
      this.answering = null;
      this.abort = null;
      conversation.updated = Date.now();
      conversations.save();
    }
  }

  /** Streams the answer into `turn`; its stats start at the first piece and complete at the end. */
  private async stream(model: string, messages: ChatMessage[], turn: Turn, signal: AbortSignal) {
    const sent = performance.now();
    const res = await request("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model, messages, stream: true }),
      signal,
    });
    for await (const chunk of ndjson<ChatChunk>(res)) {
      if (chunk.error) throw new Error(chunk.error);
      const delta = chunk.message?.content ?? "";
      if (delta) {
        turn.stats ??= { ...NO_STATS, ttft_ms: performance.now() - sent };
        turn.content += delta;
      }
      if (chunk.done) {
        const seconds = (chunk.eval_duration ?? 0) / 1e9;
        turn.stats = {
          ttft_ms: turn.stats?.ttft_ms ?? null,
          tokens: chunk.eval_count ?? null,
          tokens_per_second: seconds > 0 && chunk.eval_count ? chunk.eval_count / seconds : null,
          load_seconds: chunk.load_duration ? chunk.load_duration / 1e9 : null,
          done_reason: chunk.done_reason ?? null,
        };
        return;
      }
    }
    throw new Error("the answer ended before it was done");
  }
}

export const chat = new Chat();
