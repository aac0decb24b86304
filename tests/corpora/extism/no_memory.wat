;; Exports no memory: not an Extism plugin.
(module (func (export "run") (result i32) (i32.const 0)))
