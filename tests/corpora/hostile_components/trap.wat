;; trap: greet executes `unreachable` (a Rust panic with panic=abort looks like this).
(module
  (memory (export "memory") 1)
  ;; Minimal canonical-ABI allocator: bump, never frees, never grows (test inputs are small).
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (local.get $p))
  (func (export "greet") (param i32 i32) (result i32)
    unreachable))
