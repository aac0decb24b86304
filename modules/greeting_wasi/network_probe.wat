;; The network probe (world `network-probe` of wit/world.wit): greet ignores its name and answers three
;; letters for a name lookup of "localhost", creating an IPv4 TCP socket and connecting it to
;; 127.0.0.1:6379: '+' when the host did it, else 'a' + the error-code's index.
(module
  (import "wasi:sockets/instance-network@0.2.0" "instance-network" (func $network (result i32)))
  (import "wasi:sockets/ip-name-lookup@0.2.0" "resolve-addresses" (func $resolve (param i32 i32 i32 i32)))
  (import "wasi:sockets/tcp-create-socket@0.2.0" "create-tcp-socket" (func $socket (param i32 i32)))
  (import "wasi:sockets/tcp@0.2.0" "[method]tcp-socket.start-connect"
    (func $connect (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "localhost")
  (global $heap (mut i32) (i32.const 4096))

  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))

  (func $letter (param $failed i32) (param $code i32) (result i32)
    (select (i32.add (i32.const 97) (local.get $code)) (i32.const 43) (local.get $failed)))

  (func (export "greet") (param i32 i32) (result i32)
    (local $net i32)
    (local.set $net (call $network))
    (call $resolve (local.get $net) (i32.const 200) (i32.const 9) (i32.const 32))
    (i32.store8 (i32.const 128) (call $letter (i32.load8_u (i32.const 32)) (i32.load8_u (i32.const 36))))
    (call $socket (i32.const 0) (i32.const 48))
    (i32.store8 (i32.const 129) (call $letter (i32.load8_u (i32.const 48)) (i32.load8_u (i32.const 52))))
    (i32.store8 (i32.const 130) (i32.const 45))  ;; '-': not tried (no socket)
    (if (i32.eqz (i32.load8_u (i32.const 48)))
      (then
        (call $connect (i32.load (i32.const 52)) (local.get $net)
          (i32.const 0) (i32.const 6379) (i32.const 127) (i32.const 0) (i32.const 0) (i32.const 1)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
          (i32.const 64))
        (i32.store8 (i32.const 130) (call $letter (i32.load8_u (i32.const 64)) (i32.load8_u (i32.const 65))))))
    (i32.store (i32.const 0) (i32.const 128))
    (i32.store (i32.const 4) (i32.const 3))
    (i32.const 0)))
