// The API key this browser sends, kept in localStorage, and whether the server asked for one.

const STORAGE_KEY = "perch.apiKey";

class Auth {
  key = $state(localStorage.getItem(STORAGE_KEY) ?? "");
  /** Set when the server answered 401; the key form shows while it is. */
  needed = $state(false);
  /** Why the server refused the last key, when it did. */
  reason = $state("");
  /** Bumped whenever the key changes, so that views reload what the old key could not read. */
  version = $state(0);

  header(): Record<string, string> {
    return this.key ? { Authorization: `Bearer ${this.key}` } : {};
  }

  refused(message: string) {
    this.reason = message;
    this.needed = true;
  }

  use(key: string) {
    this.key = key.trim();
    localStorage.setItem(STORAGE_KEY, this.key);
    this.needed = false;
    this.reason = "";
    this.version++;
  }
}

export const auth = new Auth();
