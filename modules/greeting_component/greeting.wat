;; The core module of the greeting component (world `wasmq:greeting/greeter`),
;; written against the canonical ABI by hand:
;;
;;   greet(name_ptr, name_len) -> retptr   the string result does not fit in
;;       one flat value, so greet returns a pointer to an 8-byte return area
;;       [ptr: i32][len: i32] that points at "Hello World, NAME!" (UTF-8).
;;   cabi_realloc(old_ptr, old_size, align, new_size) -> ptr
;;       the host calls it to place the argument string in our memory.
;;   cabi_post_greet(retptr)   runs after the host has copied the answer out:
;;       everything allocated for the call is released.
;;
;; Memory is a bump allocator that grows the memory on demand and aborts with
;; `unreachable` when `memory.grow` is refused (the host's memory cap).
(module
  (memory (export "memory") 1)

  ;; 0..7: the return area; 16..28: the greeting's prefix; the heap starts at 1024.
  (data (i32.const 16) "Hello World, ")
  (global $heap_base i32 (i32.const 1024))
  (global $heap (mut i32) (i32.const 1024))

  (func $alloc (param $align i32) (param $size i32) (result i32)
    (local $p i32) (local $end i32) (local $top i32)
    ;; p = heap rounded up to `align` (a power of two; the canonical ABI uses 1, 2, 4 or 8)
    (local.set $p
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $p) (local.get $size)))
    (if (i32.lt_u (local.get $end) (local.get $p)) (then unreachable))
    (local.set $top (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $top))
      (then
        (if (i32.eq
              (memory.grow
                (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $top)) (i32.const 65535))
                           (i32.const 16)))
              (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $p))

  (func (export "cabi_realloc")
        (param $old_ptr i32) (param $old_size i32) (param $align i32) (param $new_size i32)
        (result i32)
    (local $p i32)
    (local.set $p (call $alloc (local.get $align) (local.get $new_size)))
    (if (local.get $old_ptr)
      (then
        (memory.copy (local.get $p) (local.get $old_ptr)
          (select (local.get $old_size) (local.get $new_size)
                  (i32.lt_u (local.get $old_size) (local.get $new_size))))))
    (local.get $p))

  (func (export "greet") (param $name i32) (param $len i32) (result i32)
    (local $out i32) (local $out_len i32)
    ;; "Hello World, " + name + "!"
    (local.set $out_len (i32.add (local.get $len) (i32.const 14)))
    (if (i32.lt_u (local.get $out_len) (local.get $len)) (then unreachable))
    (local.set $out (call $alloc (i32.const 1) (local.get $out_len)))
    (memory.copy (local.get $out) (i32.const 16) (i32.const 13))
    (memory.copy (i32.add (local.get $out) (i32.const 13)) (local.get $name) (local.get $len))
    (i32.store8 (i32.add (local.get $out) (i32.sub (local.get $out_len) (i32.const 1))) (i32.const 33))
    (i32.store (i32.const 0) (local.get $out))
    (i32.store (i32.const 4) (local.get $out_len))
    (i32.const 0))

  (func (export "cabi_post_greet") (param $retptr i32)
    (global.set $heap (global.get $heap_base)))
)
