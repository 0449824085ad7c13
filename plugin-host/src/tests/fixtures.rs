//! One test per plugin in `plugins/`, named after it.

use std::time::{Duration, Instant};

use changewire_plugin_artifacts as artifacts;
use serde_json::json;

use super::*;

// ----- examples ---------------------------------------------------------

#[test]
fn filter_by_field() {
    let p = plugin(artifacts::FILTER_BY_FIELD);
    assert_eq!(
        p.call(&input(r#"{"equals":"complete"}"#)).ok(),
        Some(PluginOutcome::Deliver {
            body: None,
            headers: vec![]
        })
    );
    assert_eq!(
        p.call(&input(
            r#"{"path":"data.new.status","one_of":["failed","cancelled"]}"#
        ))
        .ok(),
        Some(PluginOutcome::Drop {
            reason: r#"data.new.status is "complete""#.into()
        })
    );
    // An update that did not touch status: `data.new` has no status.
    let untouched = BODY.replace(r#""new":{"status":"complete"}"#, r#""new":{"qty":2}"#);
    assert_eq!(
        p.call(&input_with(&untouched, r#"{"equals":"complete"}"#))
            .ok(),
        Some(PluginOutcome::Drop {
            reason: "data.new.status is absent".into()
        })
    );
    // A configuration mistake is the plugin's error, with its message.
    let err = p
        .call(&input(r#"{"equals":"complete","bogus":1}"#))
        .unwrap_err();
    assert_eq!(err.kind(), "plugin_error");
    assert!(
        err.to_string().starts_with(
            "plugin returned an error: invalid plugin configuration: unknown field `bogus`"
        ),
        "{err}"
    );
}

#[test]
fn redact_fields() {
    let p = plugin(artifacts::REDACT_FIELDS);
    let body = r#"{"event_id":1,"subscription_id":2,"resource":"runs","action":"update","transaction_id":3,"occurred_at":"2026-11-23T10:00:00.000Z","data":{"id":7,"etag":"e","old":{"status":"in_progress","email":"a@x.io"},"new":{"status":"complete","email":"b@x.io","owner":{"phone":"555","name":"Ada"}}}}"#;
    let out = p
        .call(&input_with(body, r#"{"fields":["email","owner.phone"]}"#))
        .expect("redacts");
    let PluginOutcome::Deliver {
        body: Some(text),
        headers,
    } = out
    else {
        panic!("expected a new body");
    };
    assert!(headers.is_empty());
    // Byte-exact: key order is preserved, only the values changed.
    assert_eq!(
        text,
        body.replace("a@x.io", "[redacted]")
            .replace("b@x.io", "[redacted]")
            .replace("555", "[redacted]")
    );

    let out = p
        .call(&input_with(body, r#"{"fields":["email"],"mode":"remove"}"#))
        .expect("removes");
    let v = deliver_body(out);
    assert_eq!(v["data"]["old"], json!({"status": "in_progress"}));
    assert_eq!(
        v["data"]["new"],
        json!({"status": "complete", "owner": {"phone": "555", "name": "Ada"}})
    );
    assert_eq!(v["event_id"], 1);
}

#[test]
fn slack_format() {
    let p = plugin(artifacts::SLACK_FORMAT);
    let out = p.call(&input(r#"{"prefix":"[ION] "}"#)).expect("formats");
    assert_eq!(
        deliver_body(out),
        json!({"text": "[ION] runs 7 updated\n• status: in_progress → complete"})
    );
}

#[test]
fn add_header() {
    let p = plugin(artifacts::ADD_HEADER);
    let out = p
        .call(&input(
            r#"{"headers":{"X-Team":"payments","x-env":"prod"}}"#,
        ))
        .expect("adds");
    assert_eq!(
        out,
        PluginOutcome::Deliver {
            body: None,
            headers: vec![
                PluginHeader {
                    name: "x-team".into(),
                    value: "payments".into()
                },
                PluginHeader {
                    name: "x-env".into(),
                    value: "prod".into()
                },
            ],
        }
    );
}

// ----- hostile fixtures ---------------------------------------------------

#[test]
fn hostile_loop_forever() {
    // The default limits, 100 ms among them (the shared test host allows 5 s).
    let host = PluginHost::new(PluginLimits::default()).expect("default host");
    let p = host
        .compile(&read(artifacts::HOSTILE_LOOP_FOREVER))
        .expect("compiles");
    let started = Instant::now();
    let err = p.call(&input("{}")).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, Error::Timeout { limit_ms: 100 }), "{err:?}");
    assert_eq!(err.to_string(), "plugin exceeded its time limit of 100 ms");
    assert!(
        took >= Duration::from_millis(100),
        "interrupted early: {took:?}"
    );
    assert!(
        took < Duration::from_millis(3000),
        "interrupted late: {took:?}"
    );
    // The interrupted instance was discarded; the next call gets a fresh
    // one and is interrupted again.
    assert_eq!(p.warm_instances(), 0);
    assert!(matches!(p.call(&input("{}")), Err(Error::Timeout { .. })));
}

#[test]
fn hostile_alloc_unbounded() {
    // A small cap and a generous time limit, so that on a loaded machine the
    // memory cap, not the clock, is what stops it.
    let limits = PluginLimits {
        memory_limit_bytes: 8 << 20,
        time_limit_ms: 5_000,
        ..PluginLimits::default()
    };
    let host = PluginHost::new(limits).expect("host");
    let p = host
        .compile(&read(artifacts::HOSTILE_ALLOC_UNBOUNDED))
        .expect("compiles");
    let err = p.call(&input("{}")).unwrap_err();
    match err {
        Error::MemoryLimit {
            limit_bytes,
            requested_bytes,
        } => {
            assert_eq!(limit_bytes, 8 << 20);
            assert!(requested_bytes > limit_bytes, "{requested_bytes}");
        }
        other => panic!("expected MemoryLimit, got {other:?}"),
    }
    assert_eq!(p.warm_instances(), 0);
}

#[test]
fn hostile_two_memories() {
    // 8 MiB = 128 pages for all memories together; each of the two starts
    // at one page. No warm reuse: every call starts from a fresh instance.
    const PAGE: u64 = 64 << 10;
    let limits = PluginLimits {
        memory_limit_bytes: 128 * PAGE,
        time_limit_ms: 5_000,
        max_warm_instances: 0,
        ..PluginLimits::default()
    };
    let host = PluginHost::new(limits).expect("host");
    let p = host
        .compile(&read(artifacts::HOSTILE_TWO_MEMORIES))
        .expect("compiles");
    let delivered = Some(PluginOutcome::Deliver {
        body: None,
        headers: vec![],
    });
    // One memory may take the whole cap (beside the other's one page)...
    assert_eq!(p.call(&input(r#"{"grow":[126,1]}"#)).ok(), delivered);
    // ...but not a page more.
    assert!(matches!(
        p.call(&input(r#"{"grow":[127,1]}"#)),
        Err(Error::MemoryLimit { .. })
    ));
    // Each memory grown to 60% of the cap: the second growth is refused.
    let err = p.call(&input(r#"{"grow":[77,2]}"#)).unwrap_err();
    match err {
        Error::MemoryLimit {
            limit_bytes,
            requested_bytes,
        } => {
            assert_eq!(limit_bytes, 128 * PAGE);
            assert_eq!(requested_bytes, (78 + 78) * PAGE);
        }
        other => panic!("expected MemoryLimit, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "plugin exceeded its memory limit of {} bytes (its memories would total {} bytes)",
            128 * PAGE,
            156 * PAGE
        )
    );
    // The plugin still works within the cap.
    assert_eq!(p.call(&input(r#"{"grow":[10,2]}"#)).ok(), delivered);
}

#[test]
fn hostile_panic() {
    let err = plugin(artifacts::HOSTILE_PANIC)
        .call(&input("{}"))
        .unwrap_err();
    let Error::Trap { message } = &err else {
        panic!("expected Trap, got {err:?}")
    };
    // The trap, and the panic message the SDK's hook reported before it.
    assert!(
        message.starts_with("wasm `unreachable` instruction executed (panicked at "),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(
            "hostile plugin panicked on purpose ({} bytes of body))",
            BODY.len()
        )),
        "{message}"
    );
}

#[test]
fn hostile_unreachable() {
    let err = plugin(artifacts::HOSTILE_UNREACHABLE)
        .call(&input("{}"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin trapped: wasm `unreachable` instruction executed"
    );
}

#[test]
fn hostile_stack_overflow() {
    let err = plugin(artifacts::HOSTILE_STACK_OVERFLOW)
        .call(&input("{}"))
        .unwrap_err();
    let Error::Trap { message } = &err else {
        panic!("expected Trap, got {err:?}")
    };
    // wasmtime's own stack limit, or the guest's shadow stack running off
    // the bottom of its memory: either way a trap, not a crash.
    assert!(
        message.contains("call stack exhausted") || message.contains("out of bounds memory access"),
        "{message}"
    );
    assert!(
        plugin(artifacts::FILTER_BY_FIELD)
            .call(&input(r#"{"equals":"complete"}"#))
            .is_ok()
    );
}

#[test]
fn hostile_huge_output() {
    let p = plugin(artifacts::HOSTILE_HUGE_OUTPUT);
    // 100 MB cannot even be built under the 64 MiB memory cap.
    assert!(matches!(
        p.call(&input("{}")),
        Err(Error::MemoryLimit { .. })
    ));
    // 8 MB can, and is refused on the way out.
    let err = p.call(&input(r#"{"bytes":8000000}"#)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutputTooLarge {
                size: 8_000_000,
                limit: 4_194_304
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "plugin output is 8000000 bytes, over the limit of 4194304 bytes"
    );
    // The plugin returned normally, so its instance was kept and still works.
    assert_eq!(p.warm_instances(), 1);
    assert!(p.call(&input(r#"{"bytes":100}"#)).is_ok());
}

#[test]
fn hostile_garbage_output() {
    let p = plugin(artifacts::HOSTILE_GARBAGE_OUTPUT);
    let cases = [
        ("not-json", "the body is not valid JSON: "),
        ("crlf-value", "header `x-ok` value contains byte 0x0d"),
        (
            "bad-name",
            r#"header name "x y" is not a valid HTTP header name"#,
        ),
        (
            "content-type",
            "header `content-type` is set by the gateway",
        ),
        (
            "signature",
            "header `x-ion-signature` is set by the gateway",
        ),
        (
            "webhook-signature",
            "header `webhook-signature` is set by the gateway",
        ),
        (
            "authorization",
            "header `authorization` is set by the gateway",
        ),
        ("host", "header `host` is set by the gateway"),
        (
            "content-length",
            "header `content-length` is set by the gateway",
        ),
    ];
    for (kind, reason) in cases {
        let config = format!(r#"{{"kind":"{kind}"}}"#);
        match p.call(&input(&config)) {
            Err(Error::InvalidOutput { reason: got }) => {
                assert!(got.starts_with(reason), "{kind}: {got}")
            }
            other => panic!("{kind}: expected InvalidOutput, got {other:?}"),
        }
    }
}

#[test]
fn hostile_forbidden_import() {
    let err = host()
        .compile(&read(artifacts::HOSTILE_FORBIDDEN_IMPORT))
        .unwrap_err();
    let Error::ForbiddenImport { imports } = &err else {
        panic!("expected ForbiddenImport, got {err:?}")
    };
    assert!(
        imports.iter().any(|i| i == "wasi:clocks/wall-clock@0.2.6"),
        "{imports:?}"
    );
    assert!(
        err.to_string().contains("wasi:clocks/wall-clock@0.2.6"),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with("plugins get no filesystem, network, clock, randomness or environment")
    );
}

#[test]
fn hostile_print_stdout() {
    let err = plugin(artifacts::HOSTILE_PRINT_STDOUT)
        .call(&input("{}"))
        .unwrap_err();
    let Error::Trap { message } = &err else {
        panic!("expected Trap, got {err:?}")
    };
    assert!(
        message.starts_with(
            "called `wasi:cli/stdout@0.2.6#get-stdout`, which changewire does not provide"
        ),
        "{message}"
    );
}

#[test]
fn hostile_stateful_counter() {
    // Its own compile: this test counts instances.
    let p = host()
        .compile(&read(artifacts::HOSTILE_STATEFUL_COUNTER))
        .expect("compiles");
    assert_eq!(p.warm_instances(), 1, "compile leaves one warm instance");
    let count = |config: &str| p.call(&input(config)).map(|o| header(&o, "x-call-count"));
    // Sequential calls reuse the warm instance: its static counter goes up.
    assert_eq!(count("{}").ok().flatten().as_deref(), Some("1"));
    assert_eq!(count("{}").ok().flatten().as_deref(), Some("2"));
    assert_eq!(count("{}").ok().flatten().as_deref(), Some("3"));
    assert_eq!(p.warm_instances(), 1);
    // Call 4 traps: that instance is discarded...
    assert!(matches!(count(r#"{"fail_on":4}"#), Err(Error::Trap { .. })));
    assert_eq!(p.warm_instances(), 0);
    // ...and the next call runs in a fresh one, starting from 1 again.
    assert_eq!(count("{}").ok().flatten().as_deref(), Some("1"));
    assert_eq!(p.warm_instances(), 1);
}

#[test]
fn hostile_core_module() {
    let err = host()
        .compile(&read(artifacts::HOSTILE_CORE_MODULE))
        .unwrap_err();
    assert!(matches!(err, Error::NotAComponent(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("this is a core WebAssembly module; build the plugin for `wasm32-wasip2`"),
        "{err}"
    );
}

#[test]
fn hostile_no_transformer() {
    let err = host()
        .compile(&read(artifacts::HOSTILE_NO_TRANSFORMER))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin does not implement the changewire:plugin 0.1 interface: \
         it exports nothing, not `changewire:plugin/transformer@0.1.0`"
    );
}

#[test]
fn hostile_future_version() {
    // Built against changewire:plugin@0.1.1, which adds a function: a host
    // that knows 0.1.0 loads and calls it (semver-compatible lookup).
    let p = host()
        .compile(&read(artifacts::HOSTILE_FUTURE_VERSION))
        .expect("0.1.1 loads");
    let out = p.call(&input("{}")).expect("calls");
    assert_eq!(
        header(&out, "x-built-against").as_deref(),
        Some("changewire:plugin@0.1.1")
    );
}

// ----- refusal of other bad uploads ------------------------------------

#[test]
fn invalid_component_is_refused_with_the_compilers_reason() {
    // A valid header followed by garbage.
    let mut wasm = read(artifacts::ADD_HEADER);
    wasm.truncate(wasm.len() / 2);
    let err = host().compile(&wasm).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("invalid WebAssembly component: "),
        "{err}"
    );
}
// ----- every plugin has a test ------------------------------------------

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[expect(unused_imports, reason = "only checks that a test of this name exists")]
        use self::$name as _;
    };
}
artifacts::foreach_plugin!(assert_test_exists);
