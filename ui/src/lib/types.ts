// Shapes of the JSON that Perch's HTTP API sends and receives.

export type Verdict = "fits" | "tight" | "wont_fit";

export interface FitReport {
  fit: Verdict;
  need_bytes: number;
  need: { context: number; weights: number; kv: number; saved: number; workspace: number; buffer_cache: number };
  available_bytes: number;
  shortfall_bytes: number;
  message: string;
}

export interface LocalModel {
  name: string;
  format: "gguf" | "mlx";
  architecture: string;
  parameters: number;
  quantization: string | null;
  size: number;
  read_only: boolean;
  loaded: boolean;
  /** The engine it runs on. */
  engine: EngineName | null;
  fit: FitReport | null;
}

export interface CatalogModel {
  name: string;
  description: string;
  family: string;
  parameters: number;
  quantization: string;
  context_length: number;
  weights_bytes: number;
  downloaded: boolean;
  fit: FitReport;
}

export interface LoadResult {
  name: string;
  context_length: number;
  planned_bytes: number;
  load_seconds: number;
}

export interface UnloadResult {
  unloaded: "now" | "after_requests" | "not_loaded";
  requests_in_flight: number;
}

export interface MemoryReading {
  total: number;
  used_by_system: number;
  used_by_perch: number;
  models: { name: string; weights: number; kv: number; planned: number }[];
  headroom: number;
  budget: number;
}

export type DownloadStage = "resolving" | "downloading" | "verifying" | "done" | "failed" | "cancelled";

export interface DownloadProgress {
  name: string;
  stage: DownloadStage;
  total: number;
  completed: number;
  bytes_per_second: number;
  eta_seconds: number | null;
  source: string | null;
  error: string | null;
}

/** One NDJSON line of `POST /api/pull`. */
export interface PullLine {
  status?: string;
  digest?: string;
  total?: number;
  completed?: number;
  error?: string;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** One NDJSON line of `POST /api/chat`. */
export interface ChatChunk {
  message?: ChatMessage | null;
  done?: boolean;
  done_reason?: string | null;
  total_duration?: number | null;
  load_duration?: number | null;
  prompt_eval_count?: number | null;
  prompt_eval_duration?: number | null;
  eval_count?: number | null;
  eval_duration?: number | null;
  error?: string;
}

export type ListenMode = "loopback" | "tailscale" | "network";

export type EngineName = "llama.cpp" | "mlx";

export interface Settings {
  listen: ListenMode;
  port: number;
  keep_alive: string;
  context_length: number;
  max_loaded_models: number;
  /** Requests each model answers at once, batched together. */
  parallel: number;
  /** The engine GGUF files run on (MLX directories always run on MLX). */
  gguf_engine: EngineName;
  allowed_origins: string[];
  /** The port actually listened on (differs from `port` when that is 0). */
  listening_port: number | null;
  settings_file: string;
  /** Where log files are written; null when Perch logs to stderr only. */
  log_dir: string | null;
  /** Where API keys (and the hub token) are kept. */
  secret_store: string;
  /** Whether downloads send a Hugging Face token. */
  hub_token: boolean;
}

export type SettingsChange = Partial<
  Pick<
    Settings,
    "listen" | "keep_alive" | "context_length" | "max_loaded_models" | "parallel" | "gguf_engine" | "allowed_origins"
  >
>;

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  created: string;
}

/** A key as created: the only time its secret is seen. */
export interface NewApiKey extends ApiKey {
  key: string;
}

export interface SettingsSaved extends Settings {
  new_key?: NewApiKey;
}

export interface NetworkStatus {
  listen: ListenMode;
  urls: string[];
  tailscale: { up: boolean; addresses: string[]; dns_name: string | null };
  lan_addresses: string[];
  key_required: boolean;
  message: string;
  /** Why the last change of where Perch listens could not be made. */
  error: string | null;
}
