// Human-readable numbers: sizes, parameter counts, rates, durations and memory verdicts.
import type { FitReport } from "./types";

/** Bytes in decimal units, as Perch's own messages write them ("0.93 GB"). */
export function bytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Math.abs(n);
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  const digits = unit === 0 ? 0 : value < 10 ? 2 : value < 100 ? 1 : 0;
  return `${n < 0 ? "-" : ""}${value.toFixed(digits)} ${units[unit]}`;
}

export function parameters(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 0 : 1)}B`;
  if (n >= 1e6) return `${Math.round(n / 1e6)}M`;
  return String(n);
}

export function rate(bytesPerSecond: number): string {
  return `${bytes(bytesPerSecond)}/s`;
}

export function duration(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${Math.round(seconds % 60)}s`;
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

export function percent(done: number, total: number): number {
  return total > 0 ? Math.min(100, (done / total) * 100) : 0;
}

/** "fits: 9.1 GB left", "tight: 0.4 GB left" or "short by 3.2 GB". */
export function verdict(fit: FitReport | null): string {
  if (!fit) return "fit unknown";
  if (fit.fit === "wont_fit") return `short by ${bytes(fit.shortfall_bytes)}`;
  const left = bytes(Math.max(0, fit.available_bytes - fit.need_bytes));
  return `${fit.fit === "tight" ? "tight" : "fits"}: ${left} left`;
}

export function date(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}
