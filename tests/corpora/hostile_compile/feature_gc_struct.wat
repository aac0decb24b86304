;; uses gc
(module (type $s (struct (field i32))) (func (export "run") (result anyref) (ref.null any)))
