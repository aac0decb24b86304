;; Modules the Extism loader must refuse, one per export/import problem (see tests/sandbox/extism).
(module
  (import "extism:host/env" "not_a_kernel_function" (func (param i64)))
  (memory (export "memory") 1)
  (func (export "run") (result i32) (i32.const 0)))
