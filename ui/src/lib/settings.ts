// Calls for the Settings page: settings, network status and API keys.
import { getJson, sendJson } from "./api";
import type { ApiKey, NetworkStatus, NewApiKey, Settings, SettingsChange, SettingsSaved } from "./types";

export const getSettings = () => getJson<Settings>("/api/perch/settings");

export const saveSettings = (change: SettingsChange) => sendJson<SettingsSaved>("PUT", "/api/perch/settings", change);

export const getNetwork = () => getJson<NetworkStatus>("/api/perch/network");

export const listKeys = async () => (await getJson<{ keys: ApiKey[] }>("/api/perch/keys")).keys;

export const createKey = (name: string) => sendJson<NewApiKey>("POST", "/api/perch/keys", { name });

export const setHubToken = (token: string) => sendJson<void>("PUT", "/api/perch/hub-token", { token });

export const clearHubToken = () => sendJson<void>("DELETE", "/api/perch/hub-token");

export const revokeKey = (id: string) => sendJson<void>("DELETE", `/api/perch/keys/${encodeURIComponent(id)}`);
