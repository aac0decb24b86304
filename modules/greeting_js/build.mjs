// Builds greeting.js into a component with componentize-js's own API:
//   node build.mjs OUT.wasm     (run from a directory holding greeting.js and greeting.wit)
//
// Not `jco componentize`: in jco 1.35.0 that command first reads the WIT through its bundled
// wasm-tools, whose WASI filesystem (preview2-shim 0.26.1) is given no preopened directory, so
// every WIT path fails with "failed to get path metadata: No such file or directory".
// componentize-js, which the jco command wraps, builds the same component.
//
// Every WASI feature is disabled: the component imports nothing and exports only
// greet: func(name: string) -> string.
import { componentize } from "@bytecodealliance/componentize-js";
import { readFile, writeFile } from "node:fs/promises";

const out = process.argv[2];
if (!out) throw new Error("usage: node build.mjs OUT.wasm");
const source = await readFile("greeting.js", "utf8");
const { component } = await componentize(source, {
  sourceName: "greeting.js",
  witPath: "greeting.wit",
  worldName: "greeter",
  disableFeatures: ["stdio", "random", "clocks", "http", "fetch-event"],
});
await writeFile(out, component);
