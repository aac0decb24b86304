;; uses exceptions
(module (tag $e) (func (export "run") (throw $e)))
