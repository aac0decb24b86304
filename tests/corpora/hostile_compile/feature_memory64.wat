;; uses memory64
(module (memory (export "memory") i64 1))
