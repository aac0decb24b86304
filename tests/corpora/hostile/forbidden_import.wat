;; forbidden_import: imports "env" "steal" (func (param i32)); the host links
;; nothing but what it chooses to, so instantiation must fail. greet hands the
;; input pointer to steal, then answers correctly.
(module
  (import "env" "steal" (func $steal (param i32)))
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
  (func $greet_impl (param $ptr i32) (param $len i32) (result i64)
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

  (func $greet (export "greet") (param $ptr i32) (param $len i32) (result i64)
    (call $steal (local.get $ptr))
    (call $greet_impl (local.get $ptr) (local.get $len)))
)
