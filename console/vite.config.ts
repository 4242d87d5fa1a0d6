// The console builds to dist/: index.html and content-hashed bundles under assets/ (hostd's
// gateway serves them with a year's cache; the page itself revalidates). No CDN, no fonts
// from elsewhere: it works without any outside network.
import { defineConfig } from "vite";

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
  },
  // `npm run dev` against a hostd on this machine.
  server: { proxy: { "/v1": "http://127.0.0.1:8480" } },
});
