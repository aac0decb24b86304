;; seed_c_no_nul (seed-c ABI): wasm_memory_c_format_hello_world fills the
;; last 4 KiB of memory with "A" and returns a pointer to it: there is no NUL
;; byte between the answer and the end of memory.
(module
  (memory (export "memory") 1)
  ;; Seed-ABI bump allocator: never frees; wasm_deallocate always succeeds.
  (global $heap (mut i32) (i32.const 1024))
  (func $wasm_allocate (export "wasm_allocate") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap
      (i32.and (i32.add (i32.add (local.get $p) (local.get $size)) (i32.const 7))
               (i32.const -8)))
    (if (i32.gt_u (global.get $heap) (i32.shl (memory.size) (i32.const 16)))
      (then (return (i32.const 0))))
    (local.get $p))
  (func $wasm_deallocate (export "wasm_deallocate") (param $ptr i32) (result i32)
    (i32.const 0))

  (func (export "wasm_memory_c_format_hello_world") (param $cstr i32) (result i32)
    (local $p i32)
    (local.set $p (i32.sub (i32.shl (memory.size) (i32.const 16)) (i32.const 4096)))
    (memory.fill (local.get $p) (i32.const 65) (i32.const 4096))
    (local.get $p))
)
