;; bad_realloc: cabi_realloc answers a pointer past the end of memory, so the
;; host cannot even place the argument: the call must fail cleanly.
(module
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (i32.const 0x7ffffff0))
  (func (export "greet") (param i32 i32) (result i32)
    unreachable))
