;; interface_export: a correct greet, exported as `greet#greet` (world nested-greeter:
;; an interface instance `greet` holding the function), not as the world's function greet.
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "greet#greet") (param $name i32) (param $len i32) (result i32)
    (i32.store (i32.const 0) (local.get $name))
    (i32.store (i32.const 4) (local.get $len))
    (i32.const 0)))
