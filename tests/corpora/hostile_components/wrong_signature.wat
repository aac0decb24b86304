;; wrong_signature: exports greet: func(n: u32) -> u32 (world numeric-greeter).
(module
  (memory (export "memory") 1)
  (func (export "greet") (param $n i32) (result i32)
    (i32.add (local.get $n) (i32.const 1))))
