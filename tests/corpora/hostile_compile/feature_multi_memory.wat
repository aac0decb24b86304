;; uses multi-memory
(module (memory (export "memory") 1) (memory $two 1))
