// The live memory reading from /api/perch/memory/stream, reconnecting with backoff when it drops.
import { untrack } from "svelte";
import { messageOf, request } from "./api";
import { auth } from "./auth.svelte";
import { sseJson } from "./streams";
import type { MemoryReading } from "./types";

/** Perch sends a reading each second; this long without one means the stream is stuck. */
const STALL_MS = 5000;
const MAX_BACKOFF_MS = 30000;

class Memory {
  reading = $state<MemoryReading | null>(null);
  /** Whether readings are arriving now. */
  live = $state(false);
  /** Why they are not, when they are not. */
  problem = $state("");
  private wake: (() => void) | null = null;
  private started = false;

  start() {
    if (this.started) return;
    this.started = true;
    $effect.root(() => {
      $effect(() => {
        void auth.version;
        untrack(() => this.wake?.());
      });
    });
    void this.run();
  }

  private async run() {
    let backoff = 1000;
    for (;;) {
      const abort = new AbortController();
      let stall = setTimeout(() => abort.abort(), STALL_MS);
      try {
        const res = await request("/api/perch/memory/stream", {
          headers: { Accept: "text/event-stream" },
          signal: abort.signal,
        });
        for await (const reading of sseJson<MemoryReading>(res)) {
          clearTimeout(stall);
          stall = setTimeout(() => abort.abort(), STALL_MS);
          this.reading = reading;
          this.live = true;
          this.problem = "";
          backoff = 1000;
        }
        this.problem = "The memory reading ended";
      } catch (e) {
        this.problem = abort.signal.aborted ? "The memory reading stalled" : messageOf(e);
      } finally {
        clearTimeout(stall);
        abort.abort();
      }
      this.live = false;
      await this.pause(backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  /** Waits `ms`, or less when a new API key arrives. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}

export const memory = new Memory();
