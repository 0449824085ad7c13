;; A core WebAssembly module, not a component: the host must refuse it at
;; upload and say how to build a component instead.
(module
  (func (export "transform") (result i32)
    i32.const 0))
