;; uses threads
(module (memory (export "memory") 1 1 shared))
