;; Two core instances, each with a linear memory of its own: the memory cap
;; (`memory_limit_bytes`) must hold for all of a plugin's memories together,
;; not for each one.
;;
;; Configuration: {"grow": [N, M]} (the first two numbers in it, in order). A
;; call grows its own memory by N pages of 64 KiB and, with M = 2, the other
;; instance's memory by N more, then delivers the body unchanged. A refused growth traps (the host's
;; limiter); the `unreachable`s only catch a host that lets `memory.grow`
;; return -1.
;;
;; The transform export follows the canonical ABI by hand: the event's
;; fields arrive as (ptr, len) pairs and an s64, strings are copied in with
;; the bump allocator `realloc` (reset after each call by `post`), and the
;; result `ok(deliver { body: none, headers: [] })` is 28 zero bytes, read
;; from address 16, which nothing writes.
(component
  ;; The second instance: a memory and a function that grows it.
  (core module $second
    (memory (export "memory") 1)
    (func (export "grow") (param $pages i32) (result i32)
      (memory.grow (local.get $pages))))
  (core instance $second (instantiate $second))

  ;; The first instance: its own memory, the allocator, and the transform.
  (core module $main
    (import "second" "grow" (func $grow_second (param i32) (result i32)))
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32) (param $align i32) (param $size i32) (result i32)
      (local $ptr i32)
      (local.set $ptr
        (i32.and
          (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get $align))))
      (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
      (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
        (then unreachable))
      (local.get $ptr))
    (func (export "post") (param i32)
      (global.set $heap (i32.const 1024)))
    (func (export "transform")
      (param i32 i32 i32 i32 i32 i32 i64 i32 i32)
      (param $cfg i32) (param $cfg_len i32)
      (result i32)
      (local $i i32) (local $c i32) (local $n i32) (local $in i32) (local $count i32)
      (local $pages i32) (local $memories i32)
      (local.set $memories (i32.const 1))
      ;; The first two numbers in the configuration: pages, then memories.
      (block $done
        (loop $scan
          (br_if $done (i32.ge_u (local.get $i) (local.get $cfg_len)))
          (local.set $c (i32.load8_u (i32.add (local.get $cfg) (local.get $i))))
          (if (i32.and (i32.ge_u (local.get $c) (i32.const 48))
                       (i32.le_u (local.get $c) (i32.const 57)))
            (then
              (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10))
                                     (i32.sub (local.get $c) (i32.const 48))))
              (local.set $in (i32.const 1)))
            (else
              (if (local.get $in)
                (then
                  (if (i32.eqz (local.get $count))
                    (then (local.set $pages (local.get $n)))
                    (else (local.set $memories (local.get $n))))
                  (local.set $count (i32.add (local.get $count) (i32.const 1)))
                  (local.set $n (i32.const 0))
                  (local.set $in (i32.const 0))))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $scan)))
      (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1))
        (then unreachable))
      (if (i32.ge_u (local.get $memories) (i32.const 2))
        (then
          (if (i32.eq (call $grow_second (local.get $pages)) (i32.const -1))
            (then unreachable))))
      (i32.const 16)))
  (core instance $main (instantiate $main (with "second" (instance $second))))

  ;; changewire:plugin/types, as the transformer interface uses them.
  (type $event (record
    (field "resource" string)
    (field "action" string)
    (field "body" string)
    (field "receiver-id" s64)
    (field "receiver-name" string)
    (field "config" string)))
  (type $header (record (field "name" string) (field "value" string)))
  (type $deliver (record (field "body" (option string)) (field "headers" (list $header))))
  (type $outcome (variant (case "deliver" $deliver) (case "drop" string)))
  (func $transform (param "event" $event) (result (result $outcome (error string)))
    (canon lift (core func $main "transform")
      (memory (core memory $main "memory"))
      (realloc (core func $main "realloc"))
      (post-return (core func $main "post"))))
  (instance $transformer
    (export "header" (type $header))
    (export "deliver" (type $deliver))
    (export "event" (type $event))
    (export "outcome" (type $outcome))
    (export "transform" (func $transform)))
  (export "changewire:plugin/transformer@0.1.0" (instance $transformer)))
