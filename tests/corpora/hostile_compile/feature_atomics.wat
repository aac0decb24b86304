;; uses threads
(module (memory 1) (func (export "run") (result i32) (i32.atomic.load (i32.const 0))))
