// Bundles the npm `neuroglancer` client (its python-integration build) into one flat folder that
// ngshow serves at /v/<token>/.  Usage: node build.mjs [--outdir DIR]   (default: ./dist beside this file)
//
// Every check below fails the build instead of warning: an upgrade of neuroglancer that moves a file
// or renames a URL must stop here, not produce a client that breaks in the browser.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as esbuild from "esbuild";

const started = performance.now();
const HERE = path.dirname(fileURLToPath(import.meta.url));
const NG_ROOT = path.join(HERE, "node_modules", "neuroglancer");
const NG_LIB = path.join(NG_ROOT, "lib");
const OUR_ICONS = path.join(HERE, "icons");
const ENTRY_NAMES = ["main.bundle", "chunk_worker.bundle", "async_computation.bundle"];
// ngshow's static route only serves names like these (no folders, no leading dot).
const FLAT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
// Worker/WASM files that an earlier build may have left behind; removed before writing.
const OWNED_FILE = /(\.bundle\.(js|css)|\.wasm|\.map)$|^index\.html$|^LICENSE\.neuroglancer\.txt$/;

class BuildError extends Error {}
const fail = (message) => {
  throw new BuildError(message);
};

function parseCommandLine() {
  const { values } = parseArgs({
    options: { outdir: { type: "string" }, help: { type: "boolean", short: "h" } },
    strict: true,
  });
  if (values.help) {
    console.log("usage: node build.mjs [--outdir DIR]  (default: dist/ beside build.mjs)");
    process.exit(0);
  }
  // A relative --outdir means relative to where the user runs the command, like any CLI path.
  return path.resolve(values.outdir ?? path.join(HERE, "dist"));
}

function readJson(file) {
  return JSON.parse(readFileSync(file, "utf8"));
}

// The installed packages must be the pinned ones (a stale node_modules would silently bundle
// something else).
function checkInstalledVersions() {
  const ours = readJson(path.join(HERE, "package.json"));
  const pins = [
    ["neuroglancer", ours.dependencies.neuroglancer],
    ["ikonate", ours.overrides.ikonate],
  ];
  for (const [name, wanted] of pins) {
    const manifest = path.join(HERE, "node_modules", name, "package.json");
    if (!existsSync(manifest)) fail(`${name} is not installed: run \`npm ci\` in ${HERE}`);
    const got = readJson(manifest).version;
    if (got !== wanted) fail(`${name} ${got} is installed but ${wanted} is pinned: run \`npm ci\``);
  }
  return ours.dependencies.neuroglancer;
}

// Icons are imported as `ikonate/icons/NAME.svg?raw`.  The npm release of ikonate lacks a few that
// neuroglancer's git pin has; those come from our own icons/ folder.
const svgIconsPlugin = {
  name: "ngshow-svg-icons",
  setup(build) {
    build.onResolve({ filter: /\?raw$/ }, async (args) => {
      const match = /^ikonate\/icons\/([A-Za-z0-9_-]+\.svg)\?raw$/.exec(args.path);
      if (!match) {
        return { errors: [{ text: `unsupported ?raw import ${JSON.stringify(args.path)}` }] };
      }
      const fileName = match[1];
      const upstream = await build.resolve(`ikonate/icons/${fileName}`, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
      });
      if (upstream.errors.length === 0) return { path: upstream.path };
      const ours = path.join(OUR_ICONS, fileName);
      if (existsSync(ours)) return { path: ours };
      return {
        errors: [{ text: `icon ${fileName} is neither in ikonate nor in ${OUR_ICONS}: draw one` }],
      };
    });
  },
};

// async_computation/request.js starts its worker from "../async_computation.bundle.js", i.e.
// relative to lib/async_computation/.  Flattened into /v/<token>/ that would point one folder too
// high and 404 (segmentation layers never get ready), so point it at the bundle's own folder.
const REQUEST_JS = path.join(NG_LIB, "async_computation", "request.js");
const WORKER_URL = /new URL\(\s*"\.\.\/async_computation\.bundle\.js"\s*,\s*import\.meta\.url\s*\)/g;
let workerUrlRewrites = 0;
const asyncWorkerUrlPlugin = {
  name: "ngshow-async-worker-url",
  setup(build) {
    build.onLoad({ filter: /[\\/]async_computation[\\/]request\.js$/ }, async (args) => {
      if (path.resolve(args.path) !== REQUEST_JS) return undefined;
      const source = await readFile(args.path, "utf8");
      const found = source.match(WORKER_URL)?.length ?? 0;
      if (found !== 1) {
        return {
          errors: [
            {
              text: `expected exactly one new URL("../async_computation.bundle.js", import.meta.url) in ${args.path}, found ${found}: neuroglancer changed, revisit the rewrite`,
            },
          ],
        };
      }
      workerUrlRewrites += 1;
      return {
        contents: source.replace(WORKER_URL, 'new URL("./async_computation.bundle.js", import.meta.url)'),
        loader: "js",
      };
    });
  },
};

function findWasmFiles() {
  const found = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".wasm")) found.push(full);
    }
  };
  walk(NG_LIB);
  const byName = new Map();
  for (const file of found) {
    const name = path.basename(file);
    if (byName.has(name)) fail(`two .wasm files named ${name}: cannot flatten ${byName.get(name)} and ${file}`);
    byName.set(name, file);
  }
  return byName;
}

async function bundle(outdir) {
  const entryPoints = {};
  for (const name of ENTRY_NAMES) {
    const file = path.join(NG_LIB, `${name}.js`);
    if (!existsSync(file)) fail(`entry point ${file} is missing`);
    entryPoints[name] = file;
  }
  let result;
  try {
    result = await esbuild.build({
      absWorkingDir: HERE,
      entryPoints,
      outdir,
      entryNames: "[name]",
      bundle: true,
      format: "esm",
      platform: "browser",
      // Selects the python-integration variants in neuroglancer's package.json `imports` map
      // (#main → main_python.js, #datasource/python/* → the real modules instead of false.js).
      // Applies to every entry, so the chunk worker gets the python datasource backend too.
      conditions: ["neuroglancer/python"],
      // Without splitting each bundle is self-contained: the dynamic numcodecs imports of the
      // async-computation worker are inlined rather than emitted as hashed chunk files.
      splitting: false,
      minify: true,
      target: ["es2022", "chrome111", "firefox115", "safari16.4"],
      define: { "process.env.NODE_ENV": '"production"' },
      loader: { ".svg": "text" },
      plugins: [svgIconsPlugin, asyncWorkerUrlPlugin],
      metafile: true,
      write: false,
      logLevel: "silent",
    });
  } catch (error) {
    // esbuild has already collected the messages; print them in its own format.
    const messages = error.errors ?? [];
    if (messages.length === 0) throw error;
    const formatted = await esbuild.formatMessages(messages, { kind: "error", color: process.stderr.isTTY });
    process.stderr.write(formatted.join(""));
    fail(`esbuild failed with ${messages.length} error(s)`);
  }
  if (result.warnings.length > 0) {
    // Every warning seen so far has meant a real problem (unresolved condition, lost import, …).
    const formatted = await esbuild.formatMessages(result.warnings, { kind: "warning", color: process.stderr.isTTY });
    process.stderr.write(formatted.join(""));
    fail(`esbuild reported ${result.warnings.length} warning(s); treating them as errors`);
  }
  if (workerUrlRewrites === 0) fail(`${REQUEST_JS} was never bundled: the async worker URL rewrite did not apply`);
  return result;
}

// Checks on what esbuild produced, before anything is written.
function verifyBundles(result, outdir) {
  const expected = new Set([...ENTRY_NAMES.map((n) => `${n}.js`), "main.bundle.css"]);
  const texts = new Map();
  for (const file of result.outputFiles) {
    const name = path.basename(file.path);
    if (path.dirname(file.path) !== outdir) fail(`esbuild wrote outside the flat output folder: ${file.path}`);
    if (!expected.has(name)) fail(`unexpected esbuild output ${name}`);
    texts.set(name, file.text);
  }
  for (const name of expected) if (!texts.has(name)) fail(`esbuild produced no ${name}`);

  // Which sources ended up in which bundle (metafile paths are relative to absWorkingDir).
  const inputsOf = (bundleName) => {
    const key = Object.keys(result.metafile.outputs).find((k) => path.basename(k) === bundleName);
    return new Set(Object.keys(result.metafile.outputs[key].inputs).map((p) => path.resolve(HERE, p)));
  };
  const mustContain = [
    ["main.bundle.js", "main_python.js"],
    ["main.bundle.js", "python_integration/api.js"],
    ["main.bundle.js", "datasource/python/frontend.js"],
    ["chunk_worker.bundle.js", "datasource/python/backend.js"],
  ];
  for (const [bundleName, libPath] of mustContain) {
    if (!inputsOf(bundleName).has(path.join(NG_LIB, libPath))) {
      fail(`${bundleName} lacks lib/${libPath}: the neuroglancer/python condition did not apply`);
    }
  }

  const js = ENTRY_NAMES.map((n) => texts.get(`${n}.js`)).join("\n");
  if (js.includes('"../async_computation.bundle.js"')) fail("a bundle still loads ../async_computation.bundle.js");
  if (!texts.get("main.bundle.js").includes('"./chunk_worker.bundle.js"')) {
    fail("main.bundle.js does not start ./chunk_worker.bundle.js");
  }
  const startsAsyncWorker = ENTRY_NAMES.map((n) => `${n}.js`).filter((n) => inputsOf(n).has(REQUEST_JS));
  if (startsAsyncWorker.length === 0) fail("no bundle contains async_computation/request.js");
  for (const name of startsAsyncWorker) {
    if (!texts.get(name).includes('"./async_computation.bundle.js"')) {
      fail(`${name} does not start ./async_computation.bundle.js`);
    }
  }
  // Every file a bundle fetches beside itself must be in the output.
  const referenced = new Set();
  for (const m of js.matchAll(/new URL\(\s*"\.\/([^"/]+)"\s*,\s*import\.meta\.url\s*\)/g)) referenced.add(m[1]);
  return { texts, referenced };
}

async function writeOutput(result, outdir, wasmFiles, referenced) {
  await mkdir(outdir, { recursive: true });
  const planned = new Map(); // flat name → () => Promise<void>
  for (const file of result.outputFiles) {
    planned.set(path.basename(file.path), () => writeFile(file.path, file.contents));
  }
  for (const [name, source] of wasmFiles) planned.set(name, () => copyFile(source, path.join(outdir, name)));
  planned.set("index.html", () => copyFile(path.join(HERE, "index.html"), path.join(outdir, "index.html")));
  planned.set("LICENSE.neuroglancer.txt", () =>
    copyFile(path.join(NG_ROOT, "LICENSE"), path.join(outdir, "LICENSE.neuroglancer.txt")),
  );

  for (const name of planned.keys()) if (!FLAT_NAME.test(name)) fail(`output name ${name} is not a flat name`);
  for (const name of referenced) {
    if (!planned.has(name)) fail(`a bundle loads ./${name}, which the build does not produce`);
  }

  // Drop stale files of ours (e.g. a .wasm renamed by an upgrade); leave anything else alone.
  for (const name of readdirSync(outdir)) {
    if (OWNED_FILE.test(name) && !planned.has(name)) await rm(path.join(outdir, name));
  }
  await Promise.all([...planned.values()].map((write) => write()));
  return [...planned.keys()].sort();
}

async function main() {
  const outdir = parseCommandLine();
  const ngVersion = checkInstalledVersions();
  const wasmFiles = findWasmFiles();
  if (wasmFiles.size === 0) fail(`no .wasm files under ${NG_LIB}`);
  const result = await bundle(outdir);
  const { referenced } = verifyBundles(result, outdir);
  const names = await writeOutput(result, outdir, wasmFiles, referenced);
  const bytes = names.reduce((sum, name) => sum + statSync(path.join(outdir, name)).size, 0);
  const ms = Math.round(performance.now() - started);
  console.log(
    `ngshow client: neuroglancer ${ngVersion} + esbuild ${esbuild.version} -> ${outdir}: ` +
      `${names.length} files, ${(bytes / 2 ** 20).toFixed(2)} MiB, ${ms} ms`,
  );
}

main().catch((error) => {
  if (error instanceof BuildError) {
    console.error(`build.mjs: error: ${error.message}`);
  } else {
    console.error(error);
  }
  process.exit(1);
});
