// Model downloads: the open /api/pull streams (kept here, not in a page, since closing the last one
// cancels the download) and the progress Perch reports at /api/perch/downloads, polled while any runs.
import { getJson, messageOf, request, sendJson } from "./api";
import { models } from "./models.svelte";
import { ndjson } from "./streams";
import { toasts } from "./toasts.svelte";
import type { DownloadProgress, PullLine } from "./types";

const POLL_MS = 1000;
const RUNNING = new Set(["resolving", "downloading", "verifying"]);

/** What the pull stream itself last said, for the moments before Perch's progress lists it. */
interface PullState {
  status: string;
  total: number;
  completed: number;
}

class Downloads {
  progress = $state<DownloadProgress[]>([]);
  pulls = $state<Record<string, PullState>>({});
  /** Why the progress could not be read, when it could not. */
  problem = $state("");
  private cancelled = new Set<string>();
  private polling = false;

  constructor() {
    addEventListener("beforeunload", (event) => {
      if (Object.keys(this.pulls).length) event.preventDefault();
    });
  }

  /** The progress of a running download of `name`, if one runs. */
  running(name: string): DownloadProgress | undefined {
    return this.progress.find((p) => p.name === name && RUNNING.has(p.stage));
  }

  isActive(name: string): boolean {
    return name in this.pulls || this.running(name) !== undefined;
  }

  /** Names being downloaded, by this page or by anyone else. */
  active = $derived([
    ...new Set([...Object.keys(this.pulls), ...this.progress.filter((p) => RUNNING.has(p.stage)).map((p) => p.name)]),
  ]);

  async pull(name: string) {
    name = name.trim();
    if (!name || name in this.pulls) return;
    this.pulls[name] = { status: "starting", total: 0, completed: 0 };
    this.cancelled.delete(name);
    void this.poll();
    try {
      const res = await request("/api/pull", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ model: name, stream: true }),
      });
      let success = false;
      for await (const line of ndjson<PullLine>(res)) {
        if (line.error) throw new Error(line.error);
        this.pulls[name] = {
          status: line.status ?? this.pulls[name].status,
          total: line.total ?? this.pulls[name].total,
          completed: line.completed ?? this.pulls[name].completed,
        };
        success ||= line.status === "success";
      }
      if (!success) throw new Error("the download stopped before it finished");
      toasts.info(`Downloaded ${name}`);
    } catch (e) {
      if (this.cancelled.has(name)) toasts.info(`Cancelled the download of ${name}`);
      else toasts.error(`Downloading ${name}: ${messageOf(e)}`);
    } finally {
      delete this.pulls[name];
      void models.refresh();
    }
  }

  async cancel(name: string) {
    this.cancelled.add(name);
    try {
      const final = await sendJson<DownloadProgress>("POST", "/api/perch/downloads/cancel", { model: name });
      this.progress = this.progress.map((p) => (p.name === name ? final : p));
    } catch (e) {
      this.cancelled.delete(name);
      toasts.error(messageOf(e));
    }
  }

  /** Reads the progress now, then each second while a download runs. */
  async poll() {
    if (this.polling) return;
    this.polling = true;
    try {
      for (;;) {
        try {
          this.progress = await getJson<DownloadProgress[]>("/api/perch/downloads");
          this.problem = "";
        } catch (e) {
          this.problem = messageOf(e);
        }
        if (!this.active.length) break;
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    } finally {
      this.polling = false;
    }
  }
}

export const downloads = new Downloads();
