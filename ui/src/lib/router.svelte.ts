// Hash routing between the three pages: #/models, #/chat and #/settings.

export type Page = "models" | "chat" | "settings";
const PAGES: Page[] = ["models", "chat", "settings"];

function parse(hash: string): Page | null {
  const name = hash.replace(/^#\/?/, "");
  return PAGES.includes(name as Page) ? (name as Page) : null;
}

class Router {
  /** The page named in the address; null until one is chosen. */
  page = $state<Page | null>(parse(location.hash));

  constructor() {
    addEventListener("hashchange", () => (this.page = parse(location.hash)));
  }

  /** Picks the page for an address that names none, without adding a history entry. */
  settle(page: Page) {
    if (this.page) return;
    history.replaceState(null, "", `#/${page}`);
    this.page = page;
  }
}

export const router = new Router();
