;; An AssemblyScript-style plugin that aborts: env.abort(message, file, line, column) with
;; AssemblyScript strings (UTF-16LE, byte length in the u32 before the text).
(module
  (import "env" "abort" (func $abort (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 12) "\0a\00\00\00b\00o\00o\00m\00!\00")        ;; "boom!" at 16
  (data (i32.const 60) "\0e\00\00\00p\00l\00u\00g\00.\00t\00s\00") ;; "plug.ts" at 64
  (func (export "run") (result i32)
    (call $abort (i32.const 16) (i32.const 64) (i32.const 3) (i32.const 7))
    (i32.const 0))
  (func (export "bogus") (result i32)               ;; pointers outside memory: still an abort
    (call $abort (i32.const -16) (i32.const 0) (i32.const 1) (i32.const 1))
    (i32.const 0))
)
