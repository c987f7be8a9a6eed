// build.mjs — bundles the dashboard (src/main.js, uPlot and the styles) into dist/ with esbuild:
// dist/index.html, dist/app.js, dist/app.css (or into the directory given as the argument).
// No network: everything comes from node_modules.
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = process.argv[2] ? resolve(process.argv[2]) : join(here, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
await esbuild.build({
  entryPoints: { app: join(here, "src/main.js") },
  bundle: true,
  minify: true,
  sourcemap: false,
  format: "iife",
  target: ["es2020"],
  outdir: dist,
  logLevel: "warning",
});
copyFileSync(join(here, "index.html"), join(dist, "index.html"));
console.log(`dashboard built in ${dist}`);
