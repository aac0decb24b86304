(module (table (export "table") 10000000 funcref) (memory (export "memory") 1))
