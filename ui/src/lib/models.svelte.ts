// Local models and the catalog, and the actions on them (load, unload, swap, delete) with their busy state.
import { getJson, messageOf, sendJson } from "./api";
import { bytes, duration } from "./format";
import { memory } from "./memory.svelte";
import { toasts } from "./toasts.svelte";
import type { CatalogModel, LoadResult, LocalModel, UnloadResult } from "./types";

export type Action = "load" | "unload" | "swap" | "delete";

class Models {
  local = $state<LocalModel[]>([]);
  catalog = $state<CatalogModel[]>([]);
  localProblem = $state("");
  catalogProblem = $state("");
  /** Whether the local list has been read at least once. */
  ready = $state(false);
  /** What is being done to each model now, and since when (ms since epoch). */
  busy = $state<Record<string, { action: Action; since: number }>>({});
  private running = new Map<string, Promise<boolean>>();

  /** The loaded models: live from the memory reading, else as the last list said. */
  loaded = $derived(
    memory.reading ? memory.reading.models.map((m) => m.name) : this.local.filter((m) => m.loaded).map((m) => m.name),
  );

  async refresh() {
    await Promise.all([this.refreshLocal(), this.refreshCatalog()]);
  }

  async refreshLocal() {
    try {
      this.local = (await getJson<{ models: LocalModel[] }>("/api/perch/models")).models;
      this.localProblem = "";
    } catch (e) {
      this.localProblem = messageOf(e);
    } finally {
      this.ready = true;
    }
  }

  async refreshCatalog() {
    try {
      this.catalog = (await getJson<{ models: CatalogModel[] }>("/api/perch/catalog")).models;
      this.catalogProblem = "";
    } catch (e) {
      this.catalogProblem = messageOf(e);
    }
  }

  isLoaded(name: string): boolean {
    return this.loaded.includes(name);
  }

  /**
   * Runs `work` with `name` marked busy; shows its error and resolves to false when it fails.
   * While something is already being done to `name`, resolves to how that ends instead.
   */
  private act(name: string, action: Action, work: () => Promise<void>): Promise<boolean> {
    const already = this.running.get(name);
    if (already) return already;
    this.busy[name] = { action, since: Date.now() };
    const done = work()
      .then(() => true)
      .catch((e: unknown) => {
        toasts.error(messageOf(e));
        return false;
      })
      .finally(() => {
        delete this.busy[name];
        this.running.delete(name);
        void this.refresh();
      });
    this.running.set(name, done);
    return done;
  }

  private async loadNow(name: string) {
    const r = await sendJson<LoadResult>("POST", "/api/perch/load", { model: name });
    toasts.info(`Loaded ${r.name} in ${duration(r.load_seconds)} (${bytes(r.planned_bytes)} planned)`);
  }

  private async unloadNow(name: string) {
    const r = await sendJson<UnloadResult>("POST", "/api/perch/unload", { model: name });
    if (r.unloaded === "after_requests") {
      toasts.info(`${name} unloads once its ${r.requests_in_flight} running request(s) finish`);
    } else if (r.unloaded === "not_loaded") {
      toasts.info(`${name} was not loaded`);
    }
  }

  load(name: string) {
    return this.act(name, "load", () => this.loadNow(name));
  }

  unload(name: string) {
    return this.act(name, "unload", () => this.unloadNow(name));
  }

  /** Loads `name`, then unloads `replacing`, so that one model is always ready. */
  swap(name: string, replacing: string) {
    return this.act(name, "swap", async () => {
      await this.loadNow(name);
      await this.unloadNow(replacing);
    });
  }

  delete(name: string) {
    return this.act(name, "delete", async () => {
      await sendJson("DELETE", "/api/delete", { model: name });
      toasts.info(`Deleted ${name}`);
    });
  }
}

export const models = new Models();
