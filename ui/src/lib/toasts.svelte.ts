// Short messages shown in a corner: errors from the server, and confirmations of long actions.

export interface Toast {
  id: number;
  kind: "error" | "info";
  text: string;
}

class Toasts {
  list = $state<Toast[]>([]);
  private next = 1;

  show(kind: Toast["kind"], text: string) {
    const id = this.next++;
    this.list.push({ id, kind, text });
    setTimeout(() => this.dismiss(id), kind === "error" ? 12000 : 5000);
  }

  error(text: string) {
    this.show("error", text);
  }

  info(text: string) {
    this.show("info", text);
  }

  dismiss(id: number) {
    this.list = this.list.filter((t) => t.id !== id);
  }
}

export const toasts = new Toasts();
