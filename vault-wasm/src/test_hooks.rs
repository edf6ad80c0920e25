//! The test build's hook (feature `test-hooks`, never in the vault site):
//! a device that writes where its role does not allow it, as a modified
//! vault would, so that the end-to-end test can show that honest peers
//! refuse what it sends (`e2e/12-two-vaults.test.mjs`). The same path is
//! tested natively in `sim/tests/malicious.rs`.
//!
//! An app port message `{"test_write_unchecked": {"space": ID, "title": T}}`
//! (one JSON string, not a frame) creates a `note` titled `T` in the open
//! space `ID` through `Vault::write_unchecked`: no role check, sealed and
//! offered to peers by the next flush like any write.
//!
//! `{"test_panic": T}` panics with `T`, as a bug in the engine would: the
//! end-to-end test of a crash (`e2e/13-hostile-site.test.mjs`) shows that
//! a fresh engine takes over and apps reconnect with nothing lost.
//! `{"test_oom": 1}` allocates until the wasm memory cannot grow: Rust then
//! aborts — a trap, not a panic, so the panic hook is not called and the
//! worker must see the `WebAssembly.RuntimeError` itself (the same test).

use echo_core::data::SpaceId;
use echo_core::model::{Value, WriteBatch};
use wasm_bindgen::JsValue;

use crate::engine::{pump, Shared};

#[derive(serde::Deserialize)]
struct Forge {
    test_write_unchecked: Target,
}

#[derive(serde::Deserialize)]
struct Target {
    space: String,
    title: String,
}

#[derive(serde::Deserialize)]
struct Panic {
    test_panic: String,
}

#[derive(serde::Deserialize)]
struct OutOfMemory {
    #[allow(dead_code)]
    test_oom: serde::de::IgnoredAny,
}

/// Handles the hook's message; `false` for anything else.
pub(crate) fn handle(state: &Shared, data: &JsValue) -> bool {
    // The hooks' messages are small: anything longer is not looked at (and
    // not copied into wasm memory, which the oversized-message test checks).
    if crate::app_queue::units(data) > 4_096 {
        return false;
    }
    let Some(text) = data.as_string() else {
        return false;
    };
    if let Ok(Panic { test_panic }) = serde_json::from_str::<Panic>(&text) {
        panic!("test_panic: {test_panic}");
    }
    if serde_json::from_str::<OutOfMemory>(&text).is_ok() {
        // Reserved, never touched: memory.grow fails after a few GiB, and
        // the allocation failure aborts.
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(Vec::with_capacity(256 << 20));
            std::hint::black_box(&hoard);
        }
    }
    let Ok(Forge {
        test_write_unchecked: t,
    }) = serde_json::from_str::<Forge>(&text)
    else {
        return false;
    };
    let outcome = match t.space.parse::<SpaceId>() {
        Ok(space) => {
            let mut batch = WriteBatch::new();
            batch.create("note", [("title", Value::String(t.title.clone()))]);
            match state.borrow_mut().vault.write_unchecked(&space, batch) {
                Some(Ok(_)) => "written".to_string(),
                Some(Err(e)) => format!("refused: {e}"),
                None => "the space is not open".to_string(),
            }
        }
        Err(e) => format!("bad space id: {e}"),
    };
    web_sys::console::warn_1(
        &format!(
            "echo-vault (test build): write_unchecked {:?}: {outcome}",
            t.title
        )
        .into(),
    );
    pump(state);
    true
}
