// Vite build of Perch's web UI; the dev and preview servers proxy the API to a running Perch.
import { defineConfig, type ProxyOptions } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";

const perch = process.env.PERCH_URL ?? "http://127.0.0.1:18435";

// Perch rejects pages from other origins; seen through the proxy the UI is same-origin,
// so the Origin header is rewritten to Perch's own, as it is when Perch serves the UI.
const toPerch: ProxyOptions = {
  target: perch,
  changeOrigin: true,
  configure: (proxy) => {
    proxy.on("proxyReq", (req) => {
      if (req.getHeader("origin")) req.setHeader("origin", new URL(perch).origin);
    });
  },
};
const proxy = { "/api": toPerch, "/v1": toPerch, "/health": toPerch };

export default defineConfig({
  base: "./",
  plugins: [svelte({ configFile: false })],
  server: { proxy },
  preview: { proxy },
  build: { target: "es2022" },
});
