// Chat conversations, kept in localStorage, and which one is open.

const STORAGE_KEY = "perch.conversations";

export interface AnswerStats {
  /** Milliseconds from sending to the first piece of the answer, measured here. */
  ttft_ms: number | null;
  tokens: number | null;
  tokens_per_second: number | null;
  load_seconds: number | null;
  done_reason: string | null;
}

export interface Turn {
  role: "user" | "assistant";
  content: string;
  stats?: AnswerStats;
  error?: string;
  stopped?: boolean;
}

export interface Conversation {
  id: string;
  title: string;
  model: string;
  turns: Turn[];
  updated: number;
}

/** Unique enough for one browser; crypto.randomUUID needs a secure context, which http://ADDR is not. */
function newId(): string {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

function stored(): Conversation[] {
  try {
    const list = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "[]");
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

class Conversations {
  list = $state<Conversation[]>(stored());
  /** The open conversation; null for a new one that has no message yet. */
  openId = $state<string | null>(null);
  open = $derived(this.list.find((c) => c.id === this.openId) ?? null);
  /** Newest first. */
  sorted = $derived([...this.list].sort((a, b) => b.updated - a.updated));

  constructor() {
    this.openId = this.sorted[0]?.id ?? null;
  }

  save() {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(this.list));
  }

  /** Starts a conversation with its first message. */
  start(model: string, firstMessage: string): Conversation {
    const title = firstMessage.replace(/\s+/g, " ").trim().slice(0, 60);
    this.list.push({ id: newId(), title, model, turns: [], updated: Date.now() });
    const conversation = this.list[this.list.length - 1];
    this.openId = conversation.id;
    return conversation;
  }

  remove(id: string) {
    this.list = this.list.filter((c) => c.id !== id);
    if (this.openId === id) this.openId = null;
    this.save();
  }
}

export const conversations = new Conversations();
