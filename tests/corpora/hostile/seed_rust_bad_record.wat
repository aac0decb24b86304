;; seed_rust_bad_record (seed-rust ABI):
;;   wasm_memory_rust_format_hello_world returns a record address past the end
;;     of memory (memory size + 8);
;;   bad_string returns an in-bounds 8-byte record whose string pointer and
;;     length (0xFFFFFF00, 0x1000) are out of bounds.
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

  (func (export "wasm_memory_rust_format_hello_world")
        (param $offset i32) (param $length i32) (result i32)
    (i32.add (i32.shl (memory.size) (i32.const 16)) (i32.const 8)))
  (func (export "bad_string") (param $offset i32) (param $length i32) (result i32)
    (local $rec i32)
    (local.set $rec (call $wasm_allocate (i32.const 8)))
    (i32.store (local.get $rec) (i32.const 0xFFFFFF00))
    (i32.store offset=4 (local.get $rec) (i32.const 0x1000))
    (local.get $rec))
)
