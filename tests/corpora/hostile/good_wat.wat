;; good_wat: a correct packed-ABI greeting written by hand, for sanity.
;; greet(ptr, len) -> i64 answers "Hello World, NAME!" (high 32 bits: output
;; pointer, low 32 bits: output length). Memory comes from a bump allocator
;; that grows memory on demand and never frees (dealloc is a no-op).
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "Hello World, ")
  (global $heap (mut i32) (i32.const 1024))

  ;; Bump allocator; returns 0 when the request cannot be met.
  (func $alloc (export "alloc") (param $len i32) (result i32)
    (local $p i32) (local $end i32) (local $top i32)
    (local.set $p (global.get $heap))
    (local.set $end
      (i32.and (i32.add (i32.add (local.get $p) (local.get $len)) (i32.const 7))
               (i32.const -8)))
    (if (i32.lt_u (local.get $end) (local.get $p))   ;; wrapped around 4 GiB
      (then (return (i32.const 0))))
    (local.set $top (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $top))
      (then
        (if (i32.eq
              (memory.grow
                (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $top))
                                    (i32.const 65535))
                           (i32.const 16)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $p))

  (func $dealloc (export "dealloc") (param $ptr i32) (param $len i32))

  (func $greet (export "greet") (param $ptr i32) (param $len i32) (result i64)
    (local $out i32) (local $n i32)
    (local.set $n (i32.add (local.get $len) (i32.const 14)))
    (local.set $out (call $alloc (local.get $n)))
    (if (i32.eqz (local.get $out)) (then (return (i64.const 0))))
    (memory.copy (local.get $out) (i32.const 16) (i32.const 13))
    (memory.copy (i32.add (local.get $out) (i32.const 13)) (local.get $ptr) (local.get $len))
    (i32.store8 (i32.add (local.get $out) (i32.add (local.get $len) (i32.const 13)))
                (i32.const 33))  ;; "!"
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (local.get $n))))
)
