;; out_of_bounds: greet's return area points at a string far past the end of
;; memory (ptr 0x7fff0000, len 64); lifting it must fail, never read host memory.
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
    (i32.store (i32.const 0) (i32.const 0x7fff0000))
    (i32.store (i32.const 4) (i32.const 64))
    (i32.const 0)))
