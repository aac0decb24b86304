;; A plugin that also imports WASI (as Extism's Rust and Go PDKs do): prints to stdout, answers "ok".
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 8) "\10\00\00\00\03\00\00\00") ;; iovec: "hi\n" at 16
  (data (i32.const 16) "hi\n")
  (func (export "run") (result i32)
    (local $h i64)
    (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 32)))
    (local.set $h (call $alloc (i64.const 2)))
    (call $store_u8 (local.get $h) (i32.const 111))
    (call $store_u8 (i64.add (local.get $h) (i64.const 1)) (i32.const 107))
    (call $output_set (local.get $h) (i64.const 2))
    (i32.const 0))
)
