// The API key this browser sends, and whether the server asked for one. It is kept for this tab's
// session (sessionStorage) unless the person asks to remember it on this device (localStorage).

const STORAGE_KEY = "perch.apiKey";

class Auth {
  key = $state(sessionStorage.getItem(STORAGE_KEY) ?? localStorage.getItem(STORAGE_KEY) ?? "");
  /** Whether the key is remembered on this device. */
  remembered = $state(localStorage.getItem(STORAGE_KEY) !== null);
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

  use(key: string, remember: boolean) {
    this.key = key.trim();
    sessionStorage.setItem(STORAGE_KEY, this.key);
    if (remember) localStorage.setItem(STORAGE_KEY, this.key);
    else localStorage.removeItem(STORAGE_KEY);
    this.remembered = remember;
    this.needed = false;
    this.reason = "";
    this.version++;
  }

  /** Forgets the key everywhere this browser kept it. */
  forget() {
    this.key = "";
    sessionStorage.removeItem(STORAGE_KEY);
    localStorage.removeItem(STORAGE_KEY);
    this.remembered = false;
    this.version++;
  }
}

export const auth = new Auth();
