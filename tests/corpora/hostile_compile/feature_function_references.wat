;; uses function references
(module (type $f (func)) (func $g) (elem declare func $g) (func (export "run") (call_ref $f (ref.func $g))))
