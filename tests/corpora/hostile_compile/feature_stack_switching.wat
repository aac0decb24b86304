;; uses stack switching
(module (type $ft (func)) (type $ct (cont $ft)) (func (export "run") (param (ref null $ct))))
