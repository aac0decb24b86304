;; The core module of the WASI 0.2 greeting (world `wasmq:greeting-wasi/greeter`), by hand against the
;; canonical ABI. greet(name):
;;   - asks for the environment, the arguments and the preopened directories and prints their counts
;;     (one digit each, 9 meaning "9 or more") after the name to stdout, 4096 bytes per write at most
;;     (the limit of blocking-write-and-flush);
;;   - answers "Hello World, NAME!".
;; Memory is a bump allocator (grown on demand, `unreachable` when refused); nothing is freed, so one
;; instance serves many calls until its memory cap.
(module
  (import "wasi:cli/stdout@0.2.0" "get-stdout" (func $get_stdout (result i32)))
  (import "wasi:io/streams@0.2.0" "[method]output-stream.blocking-write-and-flush"
    (func $write (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.0" "[resource-drop]output-stream" (func $drop (param i32)))
  (import "wasi:cli/environment@0.2.0" "get-environment" (func $get_env (param i32)))
  (import "wasi:cli/environment@0.2.0" "get-arguments" (func $get_args (param i32)))
  (import "wasi:filesystem/preopens@0.2.0" "get-directories" (func $get_dirs (param i32)))
  (memory (export "memory") 1)

  ;; 0..7 greet's return area; 16..27 write's; 32, 48, 64: the three lists (ptr, len).
  ;; 256: the answer's prefix; 300: the counts line (digits at 305, 312, 319).
  (data (i32.const 256) "Hello World, ")
  (data (i32.const 300) "\0aenv=0 args=0 dirs=0\0a")
  (global $heap (mut i32) (i32.const 4096))

  (func $realloc (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32) (local $end i32) (local $top i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (local.set $end (i32.add (local.get $p) (local.get 3)))
    (if (i32.lt_u (local.get $end) (local.get $p)) (then unreachable))
    (local.set $top (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $top))
      (then
        (if (i32.eq (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $top))
                                                     (i32.const 65535)) (i32.const 16)))
                    (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $p))

  (func $digit (param $n i32) (result i32)
    (i32.add (i32.const 48)
      (select (i32.const 9) (local.get $n) (i32.gt_u (local.get $n) (i32.const 9)))))

  (func $write_all (param $stream i32) (param $ptr i32) (param $len i32)
    (local $n i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (local.set $n (select (i32.const 4096) (local.get $len) (i32.gt_u (local.get $len) (i32.const 4096))))
        (call $write (local.get $stream) (local.get $ptr) (local.get $n) (i32.const 16))
        (local.set $ptr (i32.add (local.get $ptr) (local.get $n)))
        (local.set $len (i32.sub (local.get $len) (local.get $n)))
        (br $more))))

  (func (export "greet") (param $name i32) (param $len i32) (result i32)
    (local $out i32) (local $stdout i32)
    (call $get_env (i32.const 32))
    (call $get_args (i32.const 48))
    (call $get_dirs (i32.const 64))
    (i32.store8 (i32.const 305) (call $digit (i32.load (i32.const 36))))
    (i32.store8 (i32.const 312) (call $digit (i32.load (i32.const 52))))
    (i32.store8 (i32.const 319) (call $digit (i32.load (i32.const 68))))
    (local.set $stdout (call $get_stdout))
    (call $write_all (local.get $stdout) (local.get $name) (local.get $len))
    (call $write_all (local.get $stdout) (i32.const 300) (i32.const 21))
    (call $drop (local.get $stdout))
    (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 1)
                                   (i32.add (local.get $len) (i32.const 14))))
    (memory.copy (local.get $out) (i32.const 256) (i32.const 13))
    (memory.copy (i32.add (local.get $out) (i32.const 13)) (local.get $name) (local.get $len))
    (i32.store8 (i32.add (local.get $out) (i32.add (local.get $len) (i32.const 13))) (i32.const 33))
    (i32.store (i32.const 0) (local.get $out))
    (i32.store (i32.const 4) (i32.add (local.get $len) (i32.const 14)))
    (i32.const 0)))
