;; The Extism kernel (`extism:host/env`) as a WebAssembly module of wasmq's own, instantiated next to the plugin
;; in the call's store, so the plugin's block traffic (alloc, load/store, input, output) never leaves wasm.
;; Only what needs the host (config, vars, logs, http) calls out, with spans this module has already checked.
;;
;; Memory: the first 1 KiB is the kernel's own (the record the host reads, free lists, the first block index);
;; blocks live from 1024 up, so an offset below 0x410 is never a block. A block is a 16-byte header
;; [cap u32][len u32 (0: free)][index position u32][next free u32] and then its data at a 16-aligned offset.
;; The index lists every block header in address order (blocks never move, so it only grows, and moves to the
;; top of memory when full); a handle is live only if the index says a header sits right before it, which a
;; plugin cannot forge (it writes only inside live blocks' data). A load or store must lie inside one live block
;; (the last one hit is cached); anything else records a fault in the record and traps, and the host turns the
;; record into a typed error. Freed blocks go on free lists by size class (floor(log2 cap)) and are reused,
;; zeroed again in a loop that costs fuel (about one unit per 5 bytes). Memory grows past the call's cap only
;; if the store's limiter lets it: it does not, so `alloc` then faults "out of memory".
;;
;; A call needs no set-up call: the host writes the call's settings at 1024 ([input length u32][log level u32]
;; [has config u32][0 u32]) and the input's bytes at 1040 (growing the memory first if they do not fit its page)
;; into this fresh instance, and the kernel's first function the plugin calls reads them ($setup): the input
;; becomes the first block, its header written over the settings. Every function that reads call state or
;; blocks sets up first (load/store's fast paths need not: their cache is empty until $find has run).
(module
  (import "wasmq:kernel" "config_get" (func $host_config_get (param i32 i32) (result i64)))
  (import "wasmq:kernel" "var_get" (func $host_var_get (param i32 i32) (result i64)))
  (import "wasmq:kernel" "var_set" (func $host_var_set (param i32 i32 i32 i64)))
  (import "wasmq:kernel" "take" (func $host_take (param i32)))
  (import "wasmq:kernel" "log" (func $host_log (param i32 i32 i32)))
  (import "wasmq:kernel" "http_request" (func $host_http (param i32 i32)))
  (memory (export "memory") 1)
  ;; The record, read by the host after the call (little-endian):
  ;;   0 output offset u64 | 8 output length u64 | 16 error offset u64 | 24 error length u64
  ;;   32 fault code u32 (1 bad_offset, 2 bad_handle, 3 out of memory, 4 bad output) | 36 fault site u32
  ;;   40 fault a u64 | 48 fault b u64
  ;; 64..192: free list heads by size class; 256..1024: the first index (192 entries); blocks from 1024.
  (global $top (mut i64) (i64.const 1024))  ;; the end of the last block
  (global $index (mut i32) (i32.const 256))
  (global $index_cap (mut i32) (i32.const 192))
  (global $count (mut i32) (i32.const 0))
  (global $cache_lo (mut i64) (i64.const 0))  ;; the data of the block last hit, [lo, lo+len)
  (global $cache_len (mut i64) (i64.const 0))  ;; 0: none
  (global $input (mut i64) (i64.const 0))
  (global $input_len (mut i64) (i64.const 0))
  (global $output (mut i64) (i64.const 0))
  (global $output_len (mut i64) (i64.const 0))
  (global $error (mut i64) (i64.const 0))
  (global $log_level (mut i32) (i32.const 2))
  (global $has_config (mut i32) (i32.const 1))
  (global $ready (mut i32) (i32.const 0))  ;; 1 once $setup has read the host's settings

  ;; The call's settings and its input (see above), read once; the input is the block at 1040 (none if empty).
  (func $setup
    (local $n i64) (local $need i64)
    (global.set $ready (i32.const 1))
    (local.set $n (i64.load32_u (i32.const 1024)))
    (global.set $log_level (i32.load (i32.const 1028)))
    (global.set $has_config (i32.load (i32.const 1032)))
    (i64.store (i32.const 1024) (i64.const 0))
    (i64.store (i32.const 1032) (i64.const 0))
    (if (i64.eqz (local.get $n)) (then (return)))
    (local.set $need (i64.and (i64.add (local.get $n) (i64.const 15)) (i64.const -16)))
    (call $reserve (i64.add (i64.const 1040) (local.get $need)) (local.get $n))  ;; the host grew it: a check
    (i32.store (i32.const 1024) (i32.wrap_i64 (local.get $need)))
    (i32.store (i32.const 1028) (i32.wrap_i64 (local.get $n)))
    (i32.store (i32.const 256) (i32.const 1024))
    (global.set $count (i32.const 1))
    (global.set $top (i64.add (i64.const 1040) (local.get $need)))
    (global.set $input (i64.const 1040))
    (global.set $input_len (local.get $n)))

  (func $fault (param $code i32) (param $site i32) (param $a i64) (param $b i64)
    (i32.store (i32.const 32) (local.get $code))
    (i32.store (i32.const 36) (local.get $site))
    (i64.store (i32.const 40) (local.get $a))
    (i64.store (i32.const 48) (local.get $b))
    (unreachable))

  ;; The header of the live block whose data holds [a, a+size), or 0; caches it.
  (func $find (param $a i64) (param $size i64) (result i32)
    (local $lo i32) (local $hi i32) (local $mid i32) (local $h i32) (local $d i64) (local $len i64)
    (if (i32.eqz (global.get $ready)) (then (call $setup)))
    (if (i64.ge_u (local.get $a) (i64.const 0x1_0000_0000)) (then (return (i32.const 0))))
    (local.set $hi (global.get $count))
    (block $found
      (loop $search  ;; lo = how many headers lie at or below a
        (br_if $found (i32.ge_u (local.get $lo) (local.get $hi)))
        (local.set $mid (i32.shr_u (i32.add (local.get $lo) (local.get $hi)) (i32.const 1)))
        (if (i64.le_u (i64.extend_i32_u (i32.load (i32.add (global.get $index) (i32.shl (local.get $mid) (i32.const 2)))))
                      (local.get $a))
          (then (local.set $lo (i32.add (local.get $mid) (i32.const 1))))
          (else (local.set $hi (local.get $mid))))
        (br $search)))
    (if (i32.eqz (local.get $lo)) (then (return (i32.const 0))))
    (local.set $h (i32.load (i32.add (global.get $index) (i32.shl (i32.sub (local.get $lo) (i32.const 1)) (i32.const 2)))))
    (local.set $len (i64.load32_u offset=4 (local.get $h)))
    (local.set $d (i64.sub (local.get $a) (i64.extend_i32_u (i32.add (local.get $h) (i32.const 16)))))
    (if (i32.and (i64.lt_u (local.get $d) (local.get $len)) (i64.ge_u (i64.sub (local.get $len) (local.get $d)) (local.get $size)))
      (then
        (global.set $cache_lo (i64.extend_i32_u (i32.add (local.get $h) (i32.const 16))))
        (global.set $cache_len (local.get $len))
        (return (local.get $h))))
    (i32.const 0))

  ;; The header of the live block starting at `off`, or 0.
  (func $live (param $off i64) (result i32)
    (local $h i32) (local $pos i32)
    (if (i32.eqz (global.get $ready)) (then (call $setup)))
    (if (i32.or (i32.or (i64.lt_u (local.get $off) (i64.const 1040)) (i64.ge_u (local.get $off) (global.get $top)))
                (i32.wrap_i64 (i64.and (local.get $off) (i64.const 15))))
      (then (return (i32.const 0))))
    (local.set $h (i32.sub (i32.wrap_i64 (local.get $off)) (i32.const 16)))
    (local.set $pos (i32.load offset=8 (local.get $h)))
    (if (i32.ge_u (local.get $pos) (global.get $count)) (then (return (i32.const 0))))
    (if (i32.ne (i32.load (i32.add (global.get $index) (i32.shl (local.get $pos) (i32.const 2)))) (local.get $h))
      (then (return (i32.const 0))))
    (if (i32.eqz (i32.load offset=4 (local.get $h))) (then (return (i32.const 0))))
    (local.get $h))

  ;; The length of the handle `off` (0: empty), trapping bad_handle at `site` unless it is 0 or live.
  (func $handle (param $off i64) (param $site i32) (result i32)
    (local $h i32)
    (if (i64.eqz (local.get $off)) (then (return (i32.const 0))))
    (local.set $h (call $live (local.get $off)))
    (if (i32.eqz (local.get $h)) (then (call $fault (i32.const 2) (local.get $site) (local.get $off) (i64.const 0))))
    (i32.load offset=4 (local.get $h)))

  ;; Make the memory at least `end` bytes, or trap out of memory (the store's limiter refuses past the cap).
  (func $reserve (param $end i64) (param $want i64)
    (local $size i64)
    (if (i64.gt_u (local.get $end) (i64.const 0xFFFF_0000))
      (then (call $fault (i32.const 3) (i32.const 14) (local.get $want) (i64.const 0))))
    (local.set $size (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))
    (if (i64.gt_u (local.get $end) (local.get $size))
      (then
        (if (i32.eq (memory.grow (i32.wrap_i64 (i64.shr_u (i64.add (i64.sub (local.get $end) (local.get $size))
                                                                   (i64.const 0xFFFF))
                                                          (i64.const 16))))
                    (i32.const -1))
          (then (call $fault (i32.const 3) (i32.const 14) (local.get $want) (i64.const 0)))))))

  ;; Zero [p, p+n) 64 bytes per iteration, so that the fuel paid grows with n (one unit per few bytes).
  (func $zero (param $p i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $p) (i32.and (local.get $n) (i32.const -64))))
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (memory.fill (local.get $p) (i32.const 0) (i32.const 64))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $more)))
    (memory.fill (local.get $p) (i32.const 0) (i32.and (local.get $n) (i32.const 63))))

  (func $class (param $cap i32) (result i32)
    (i32.sub (i32.const 31) (i32.clz (local.get $cap))))

  (func $alloc (export "alloc") (param $n i64) (result i64)
    (local $need i32) (local $k i32) (local $j i32) (local $h i32) (local $grown i64)
    (if (i32.eqz (global.get $ready)) (then (call $setup)))
    (if (i64.eqz (local.get $n)) (then (return (i64.const 0))))
    (if (i64.gt_u (local.get $n) (i64.const 0xFFFF_0000))
      (then (call $fault (i32.const 3) (i32.const 14) (local.get $n) (i64.const 0))))
    (local.set $need (i32.and (i32.add (i32.wrap_i64 (local.get $n)) (i32.const 15)) (i32.const -16)))
    (local.set $k (call $class (local.get $need)))
    ;; A freed block: the head of this class if it is big enough, else the head of one of the next two.
    (local.set $j (local.get $k))
    (block $none
      (loop $classes
        (local.set $h (i32.load offset=64 (i32.shl (local.get $j) (i32.const 2))))
        (if (i32.and (i32.ne (local.get $h) (i32.const 0)) (i32.ge_u (i32.load (local.get $h)) (local.get $need)))
          (then
            (i32.store offset=64 (i32.shl (local.get $j) (i32.const 2)) (i32.load offset=12 (local.get $h)))
            (i32.store offset=4 (local.get $h) (i32.wrap_i64 (local.get $n)))
            (call $zero (i32.add (local.get $h) (i32.const 16)) (i32.wrap_i64 (local.get $n)))
            (return (i64.extend_i32_u (i32.add (local.get $h) (i32.const 16))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br_if $none (i32.gt_u (local.get $j) (i32.add (local.get $k) (i32.const 2))))
        (br_if $classes (i32.lt_u (local.get $j) (i32.const 32)))))
    ;; A new block at the top (the index first: growing it moves the top).
    (if (i32.eq (global.get $count) (global.get $index_cap))
      (then
        (local.set $grown (i64.add (global.get $top) (i64.extend_i32_u (i32.shl (global.get $index_cap) (i32.const 3)))))
        (call $reserve (local.get $grown) (local.get $n))
        (memory.copy (i32.wrap_i64 (global.get $top)) (global.get $index) (i32.shl (global.get $count) (i32.const 2)))
        (global.set $index (i32.wrap_i64 (global.get $top)))
        (global.set $index_cap (i32.shl (global.get $index_cap) (i32.const 1)))
        (global.set $top (local.get $grown))))
    (call $reserve (i64.add (global.get $top) (i64.extend_i32_u (i32.add (local.get $need) (i32.const 16)))) (local.get $n))
    (local.set $h (i32.wrap_i64 (global.get $top)))
    (i32.store (local.get $h) (local.get $need))
    (i32.store offset=4 (local.get $h) (i32.wrap_i64 (local.get $n)))
    (i32.store offset=8 (local.get $h) (global.get $count))
    (i32.store offset=12 (local.get $h) (i32.const 0))
    (i32.store (i32.add (global.get $index) (i32.shl (global.get $count) (i32.const 2))) (local.get $h))
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (global.set $top (i64.add (global.get $top) (i64.extend_i32_u (i32.add (local.get $need) (i32.const 16)))))
    (i64.extend_i32_u (i32.add (local.get $h) (i32.const 16))))

  ;; Unknown offsets are ignored; the output's block and the error's are kept (the host reads them after).
  (func $free (export "free") (param $off i64)
    (local $h i32) (local $k i32)
    (local.set $h (call $live (local.get $off)))
    (if (i32.eqz (local.get $h)) (then (return)))
    (if (i64.eq (local.get $off) (global.get $error)) (then (return)))
    (if (i32.and (i64.ne (global.get $output_len) (i64.const 0))
                 (i64.lt_u (i64.sub (global.get $output) (local.get $off)) (i64.load32_u offset=4 (local.get $h))))
      (then (return)))
    (if (i64.eq (local.get $off) (global.get $input)) (then (global.set $input_len (i64.const 0))))
    (if (i64.eq (local.get $off) (global.get $cache_lo)) (then (global.set $cache_len (i64.const 0))))
    (i32.store offset=4 (local.get $h) (i32.const 0))
    (local.set $k (i32.shl (call $class (i32.load (local.get $h))) (i32.const 2)))
    (i32.store offset=12 (local.get $h) (i32.load offset=64 (local.get $k)))
    (i32.store offset=64 (local.get $k) (local.get $h)))

  (func $length (export "length") (param $off i64) (result i64)
    (local $h i32)
    (local.set $h (call $live (local.get $off)))
    (if (result i64) (local.get $h) (then (i64.load32_u offset=4 (local.get $h))) (else (i64.const 0))))
  (func (export "length_unsafe") (param $off i64) (result i64) (call $length (local.get $off)))

  (func (export "load_u8") (param $a i64) (result i32)
    (if (i64.ge_u (i64.sub (local.get $a) (global.get $cache_lo)) (global.get $cache_len))
      (then (if (i32.eqz (call $find (local.get $a) (i64.const 1)))
        (then (call $fault (i32.const 1) (i32.const 1) (local.get $a) (i64.const 1))))))
    (i32.load8_u (i32.wrap_i64 (local.get $a))))
  (func (export "load_u64") (param $a i64) (result i64)
    (local $d i64)
    (local.set $d (i64.sub (local.get $a) (global.get $cache_lo)))
    (if (i32.eqz (i32.and (i64.lt_u (local.get $d) (global.get $cache_len))
                          (i64.ge_u (i64.sub (global.get $cache_len) (local.get $d)) (i64.const 8))))
      (then (if (i32.eqz (call $find (local.get $a) (i64.const 8)))
        (then (call $fault (i32.const 1) (i32.const 2) (local.get $a) (i64.const 8))))))
    (i64.load (i32.wrap_i64 (local.get $a))))
  (func (export "store_u8") (param $a i64) (param $v i32)
    (if (i64.ge_u (i64.sub (local.get $a) (global.get $cache_lo)) (global.get $cache_len))
      (then (if (i32.eqz (call $find (local.get $a) (i64.const 1)))
        (then (call $fault (i32.const 1) (i32.const 3) (local.get $a) (i64.const 1))))))
    (i32.store8 (i32.wrap_i64 (local.get $a)) (local.get $v)))
  (func (export "store_u64") (param $a i64) (param $v i64)
    (local $d i64)
    (local.set $d (i64.sub (local.get $a) (global.get $cache_lo)))
    (if (i32.eqz (i32.and (i64.lt_u (local.get $d) (global.get $cache_len))
                          (i64.ge_u (i64.sub (global.get $cache_len) (local.get $d)) (i64.const 8))))
      (then (if (i32.eqz (call $find (local.get $a) (i64.const 8)))
        (then (call $fault (i32.const 1) (i32.const 4) (local.get $a) (i64.const 8))))))
    (i64.store (i32.wrap_i64 (local.get $a)) (local.get $v)))

  (func (export "input_length") (result i64) (if (i32.eqz (global.get $ready)) (then (call $setup))) (global.get $input_len))
  (func (export "input_offset") (result i64) (if (i32.eqz (global.get $ready)) (then (call $setup))) (global.get $input))
  (func (export "input_load_u8") (param $i i64) (result i32)
    (if (i32.eqz (global.get $ready)) (then (call $setup)))
    (if (i64.ge_u (local.get $i) (global.get $input_len))
      (then (call $fault (i32.const 1) (i32.const 5) (local.get $i) (i64.const 1))))
    (i32.load8_u (i32.wrap_i64 (i64.add (global.get $input) (local.get $i)))))
  (func (export "input_load_u64") (param $i i64) (result i64)
    (if (i32.eqz (global.get $ready)) (then (call $setup)))
    (if (i32.eqz (i32.and (i64.lt_u (local.get $i) (global.get $input_len))
                          (i64.ge_u (i64.sub (global.get $input_len) (local.get $i)) (i64.const 8))))
      (then (call $fault (i32.const 1) (i32.const 6) (local.get $i) (i64.const 8))))
    (i64.load (i32.wrap_i64 (i64.add (global.get $input) (local.get $i)))))

  (func (export "output_set") (param $off i64) (param $n i64)
    (if (i64.ne (local.get $n) (i64.const 0))
      (then (if (i32.eqz (call $find (local.get $off) (local.get $n)))
        (then (call $fault (i32.const 4) (i32.const 7) (local.get $off) (local.get $n))))))
    (global.set $output (local.get $off))
    (global.set $output_len (local.get $n))
    (i64.store (i32.const 0) (local.get $off))
    (i64.store (i32.const 8) (local.get $n)))
  (func (export "error_set") (param $off i64)
    (local $n i32)
    (local.set $n (call $handle (local.get $off) (i32.const 8)))
    (global.set $error (local.get $off))
    (i64.store (i32.const 16) (local.get $off))
    (i64.store (i32.const 24) (i64.extend_i32_u (local.get $n))))
  (func (export "error_get") (result i64) (global.get $error))

  ;; config_get, var_get: the host answers the value's length (-1: none) and keeps it; a block then takes it.
  (func $fetch (param $key i64) (param $site i32) (result i64)
    (local $n i64) (local $block i64)
    (if (i32.eqz (global.get $ready)) (then (call $setup)))
    (local.set $n (i64.extend_i32_u (call $handle (local.get $key) (local.get $site))))
    (if (i32.eq (local.get $site) (i32.const 9))
      (then (local.set $n (if (result i64) (global.get $has_config)
                            (then (call $host_config_get (i32.wrap_i64 (local.get $key)) (i32.wrap_i64 (local.get $n))))
                            (else (i64.const -1)))))
      (else (local.set $n (call $host_var_get (i32.wrap_i64 (local.get $key)) (i32.wrap_i64 (local.get $n))))))
    (call $free (local.get $key))
    (if (i64.le_s (local.get $n) (i64.const 0)) (then (return (i64.const 0))))
    (local.set $block (call $alloc (local.get $n)))
    (call $host_take (i32.wrap_i64 (local.get $block)))
    (local.get $block))
  (func (export "config_get") (param $key i64) (result i64) (call $fetch (local.get $key) (i32.const 9)))
  (func (export "var_get") (param $key i64) (result i64) (call $fetch (local.get $key) (i32.const 10)))
  (func (export "var_set") (param $key i64) (param $value i64)
    (local $kn i32) (local $vn i64)
    (local.set $kn (call $handle (local.get $key) (i32.const 11)))
    (local.set $vn (i64.const -1))  ;; value 0: remove the var
    (if (i64.ne (local.get $value) (i64.const 0))
      (then (local.set $vn (i64.extend_i32_u (call $handle (local.get $value) (i32.const 11))))))
    (call $host_var_set (i32.wrap_i64 (local.get $key)) (local.get $kn) (i32.wrap_i64 (local.get $value)) (local.get $vn))
    (call $free (local.get $key))
    (call $free (local.get $value)))

  (func $log (param $level i32) (param $off i64)
    (local $n i32)
    (if (i32.eqz (global.get $ready)) (then (call $setup)))
    (local.set $n (call $handle (local.get $off) (i32.add (i32.const 16) (local.get $level))))
    (if (i32.ge_u (local.get $level) (global.get $log_level))
      (then (call $host_log (local.get $level) (i32.wrap_i64 (local.get $off)) (local.get $n))))
    (call $free (local.get $off)))
  (func (export "log_trace") (param $off i64) (call $log (i32.const 0) (local.get $off)))
  (func (export "log_debug") (param $off i64) (call $log (i32.const 1) (local.get $off)))
  (func (export "log_info") (param $off i64) (call $log (i32.const 2) (local.get $off)))
  (func (export "log_warn") (param $off i64) (call $log (i32.const 3) (local.get $off)))
  (func (export "log_error") (param $off i64) (call $log (i32.const 4) (local.get $off)))
  (func (export "get_log_level") (result i32) (if (i32.eqz (global.get $ready)) (then (call $setup))) (global.get $log_level))

  (func (export "http_request") (param $request i64) (param $body i64) (result i64)
    (call $host_http (i32.wrap_i64 (local.get $request)) (call $handle (local.get $request) (i32.const 13)))
    (unreachable))  ;; the host refuses every request
  (func (export "http_status_code") (result i32) (i32.const 0))
  (func (export "http_headers") (result i64) (i64.const 0))
)
