//! `IdbStore` inside a dedicated worker — the fallback where SharedWorker is missing.
#![cfg(target_arch = "wasm32")]

mod common;

use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

#[wasm_bindgen_test]
fn runs_in_the_right_worker() {
    common::assert_global_scope("DedicatedWorkerGlobalScope");
}

#[wasm_bindgen_test]
async fn contract_cases() {
    common::contract_cases().await;
}

#[wasm_bindgen_test]
async fn durable_cases() {
    common::durable_cases().await;
}

#[wasm_bindgen_test]
async fn write_drop_reopen_read() {
    common::write_drop_reopen_read().await;
}

#[wasm_bindgen_test]
async fn applies_take_effect_in_call_order() {
    common::applies_take_effect_in_call_order().await;
}

#[wasm_bindgen_test]
async fn errors_name_the_database() {
    common::errors_name_the_database().await;
}
