import { defineConfig } from "vite";

// Served by the API server at /app/ (WEB_DIR/app/dist). `npm run dev` proxies the API.
export default defineConfig({
  base: "/app/",
  esbuild: { jsx: "automatic" },
  build: { outDir: "dist", sourcemap: false },
  server: {
    proxy: { "/graphql": { target: "http://127.0.0.1:8080", ws: true } },
  },
});
