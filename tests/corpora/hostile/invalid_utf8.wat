;; invalid_utf8: greet answers 2 in-bounds bytes, 0xFF 0xFE, which are not
;; UTF-8.
(module
  (memory (export "memory") 1)
  ;; Bump allocator (never frees, grows memory on demand, 0 on failure).
  (global $heap (mut i32) (i32.const 1024))
  (func $alloc (export "alloc") (param $len i32) (result i32)
    (local $p i32) (local $end i32) (local $top i32)
    (local.set $p (global.get $heap))
    (local.set $end
      (i32.and (i32.add (i32.add (local.get $p) (local.get $len)) (i32.const 7))
               (i32.const -8)))
    (if (i32.lt_u (local.get $end) (local.get $p)) (then (return (i32.const 0))))
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

  (data (i32.const 32) "\ff\fe")
  (func $greet (export "greet") (param $ptr i32) (param $len i32) (result i64)
    (i64.const 0x0000002000000002))  ;; ptr 32, len 2
)
