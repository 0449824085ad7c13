;; A valid component that exports nothing: the host must refuse it at upload
;; because it does not export `changewire:plugin/transformer@0.1.0`.
(component
  (core module $m
    (func (export "hello") (result i32) i32.const 42))
  (core instance $i (instantiate $m)))
