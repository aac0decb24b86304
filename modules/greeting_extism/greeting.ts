// The greeting as an Extism plugin: greet() reads the name from the plugin's
// input and answers "Hello World, <name>!" (UTF-8 in, UTF-8 out).
//
// - config "greeting" replaces "Hello World" (so the host's config is used);
// - an empty name fails through error_set, the kernel's way to report an error;
// - every call logs one info line;
// - an AssemblyScript abort (failed assertion, out-of-bounds access, ...) sets
//   the error message and traps: Extism hosts provide no `env.abort`, so the
//   build points the compiler's abort at this module's `abort` (--use abort=...).
//
// The answer goes out through Host.output with the UTF-8 bytes: as-pdk 1.0.0's
// Host.outputString passes the UTF-16 length (string.length) to output_set,
// which cuts non-ASCII answers short.
import { Config, Host, LogLevel, Memory } from "@extism/as-pdk";
import { error_set } from "@extism/as-pdk/lib/env";

export function greet(): i32 {
  const name = Host.inputString();
  if (name.length == 0) {
    error_set(Memory.allocateString("greet: the name must not be empty").offset);
    return 1;
  }
  const configured = Config.get("greeting");
  const greeting = configured === null ? "Hello World" : configured;
  Host.log(LogLevel.Info, "greeting " + name.length.toString() + " UTF-16 units");
  Host.output(Uint8Array.wrap(String.UTF8.encode(greeting + ", " + name + "!")));
  return 0;
}

// The compiler calls this instead of importing env.abort (see the build's --use).
function abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const what = message === null ? "abort" : message;
  const where = fileName === null ? "?" : fileName;
  error_set(Memory.allocateString(what + " at " + where + ":" + line.toString() + ":" + column.toString()).offset);
  unreachable();
}
