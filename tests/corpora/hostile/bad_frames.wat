;; bad_frames: broken batch answers. greet is a correct packed greet, also
;; exported as greet_lying; their batch functions lie:
;;   greet_many: a well-formed frame, but with input count + 1 (empty) items;
;;   lying_len_many: count = input count, but the first item claims 1000
;;     bytes while the whole answer block is 12 bytes long.
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
  ;; A correct packed greet: "Hello World, NAME!".
  (data (i32.const 16) "Hello World, ")
  (func $greet (export "greet") (param $ptr i32) (param $len i32) (result i64)
    (local $out i32) (local $n i32)
    (local.set $n (i32.add (local.get $len) (i32.const 14)))
    (local.set $out (call $alloc (local.get $n)))
    (if (i32.eqz (local.get $out)) (then (return (i64.const 0))))
    (memory.copy (local.get $out) (i32.const 16) (i32.const 13))
    (memory.copy (i32.add (local.get $out) (i32.const 13)) (local.get $ptr) (local.get $len))
    (i32.store8 (i32.add (local.get $out) (i32.add (local.get $len) (i32.const 13)))
                (i32.const 33))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (local.get $n))))

  (export "greet_lying" (func $greet))
  (func (export "greet_many") (param $ptr i32) (param $len i32) (result i64)
    (local $count i32) (local $size i32) (local $out i32)
    (local.set $count (i32.add (i32.load (local.get $ptr)) (i32.const 1)))
    (local.set $size (i32.add (i32.const 4) (i32.shl (local.get $count) (i32.const 2))))
    (local.set $out (call $alloc (local.get $size)))
    (if (i32.eqz (local.get $out)) (then (return (i64.const 0))))
    ;; count, then `count` zero lengths
    (memory.fill (local.get $out) (i32.const 0) (local.get $size))
    (i32.store (local.get $out) (local.get $count))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (local.get $size))))
  (func (export "lying_len_many") (param $ptr i32) (param $len i32) (result i64)
    (local $out i32)
    (local.set $out (call $alloc (i32.const 12)))
    (if (i32.eqz (local.get $out)) (then (return (i64.const 0))))
    (i32.store (local.get $out) (i32.load (local.get $ptr)))
    (i32.store offset=4 (local.get $out) (i32.const 1000))
    (i32.store offset=8 (local.get $out) (i32.const 0x7261696c))  ;; "liar"
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.const 12)))
)
