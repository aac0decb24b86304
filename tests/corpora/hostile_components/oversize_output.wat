;; oversize_output: greet answers a valid 2 MiB string (of NUL bytes) straight
;; from its memory: within bounds and UTF-8, but over a 1 MiB output limit.
(module
  (memory (export "memory") 40)
  ;; Minimal canonical-ABI allocator: bump, never frees, never grows (test inputs are small).
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (local.get $p))
  (func (export "greet") (param i32 i32) (result i32)
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (i32.const 2097152))
    (i32.const 0)))
