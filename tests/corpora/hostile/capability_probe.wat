;; capability_probe: asks WASI for what a publication may grant (clock, randomness, environment) and
;; answers the WASI errno under the scalar ABI (0: granted; 76, `notcapable`: refused by the host).
;; clock_value answers the realtime clock in nanoseconds (0 when refused); env_count the number of
;; environment variables the module sees.
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)

  (func (export "clock_errno") (result i32)
    (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 1024)))

  (func (export "clock_value") (result i64)
    (i64.store (i32.const 1024) (i64.const 0))
    (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 1024)))
    (i64.load (i32.const 1024)))

  (func (export "random_errno") (result i32)
    (call $random_get (i32.const 2048) (i32.const 16)))

  (func (export "env_count") (result i32)
    (drop (call $environ_sizes_get (i32.const 1024) (i32.const 1028)))
    (i32.load (i32.const 1024)))
)
