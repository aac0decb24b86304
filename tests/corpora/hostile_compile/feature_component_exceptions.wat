;; uses exceptions
(component (core module (tag $e) (func (export "run") (throw $e))))
