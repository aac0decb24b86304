;; The kernel's alloc is (i64) -> i64; this one asks for (i32) -> i32, and greet takes a parameter.
(module
  (import "extism:host/env" "alloc" (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "greet") (param i32) (result i32) (i32.const 0)))
