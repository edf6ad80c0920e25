//! The engine's side of the vault's second copy: the worker's `echoMirror`
//! (`worker/mirror.ts`), a mirror of the vault's IndexedDB databases in a
//! storage bucket of their own, so that the browser deleting the default
//! bucket's databases (Chromium does, for a database it finds damaged after
//! a crash) loses nothing the vault answered.
//!
//! [`prepare`] runs once the engine holds its lock, before it opens its
//! storage: the worker restores the default databases from the mirror when
//! they lost the vault, or seeds the mirror. [`apply`] hands the mirror each
//! batch as the engine writes it to IndexedDB, and [`settle`] waits for it
//! once the default database committed the batch — at most 5 s more; the
//! write is answered only once both copies hold it (or the mirror, late or
//! failed, is marked behind). Without `echoMirror` (a host without the
//! worker, the benchmarks' pages) or without storage buckets in the browser
//! both are no-ops.

use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use echo_core::rpc::Durability;
use echo_core::store::{Batch, Op};

use crate::keyring::describe;

/// `echoMirror[name]`, if the worker set it.
fn function(name: &str) -> Option<(JsValue, Function)> {
    let mirror = Reflect::get(&js_sys::global(), &"echoMirror".into()).ok()?;
    if mirror.is_undefined() || mirror.is_null() {
        return None;
    }
    let f = Reflect::get(&mirror, &name.into())
        .ok()?
        .dyn_into::<Function>()
        .ok()?;
    Some((mirror, f))
}

/// Brings the mirror and the default databases together (under the
/// engine's lock, before they are opened); says on the console what it did.
pub(crate) async fn prepare() {
    let Some((mirror, prepare)) = function("prepare") else {
        return;
    };
    let outcome = match prepare.call0(&mirror).map(|p| p.dyn_into::<Promise>()) {
        Ok(Ok(promise)) => JsFuture::from(promise).await.map_err(|e| describe(&e)),
        Ok(Err(_)) => Err("echoMirror.prepare did not return a promise".into()),
        Err(e) => Err(describe(&e)),
    };
    match outcome {
        Ok(state) => web_sys::console::info_1(
            &format!(
                "echo-vault: second copy: {}",
                state.as_string().unwrap_or_default()
            )
            .into(),
        ),
        Err(reason) => web_sys::console::warn_1(
            &format!("echo-vault: no second copy of the vault's storage: {reason}").into(),
        ),
    }
}

/// Starts writing `batch` to the mirror, as durably as the default
/// database's write: the write's promise, to hand to [`settle`] once the
/// default database committed the batch (`None` without a mirror).
pub(crate) fn apply(batch: &Batch, durability: Durability) -> Option<Promise> {
    let (mirror, apply) = function("apply")?;
    let ops: Array = batch
        .ops()
        .iter()
        .map(|op| -> JsValue {
            match op {
                Op::Put { key, value } => {
                    Array::of2(&key.as_str().into(), &Uint8Array::from(&value[..])).into()
                }
                Op::Delete { key } => Array::of1(&key.as_str().into()).into(),
            }
        })
        .collect();
    let relaxed = JsValue::from_bool(durability == Durability::Relaxed);
    apply
        .call2(&mirror, &ops, &relaxed)
        .ok()?
        .dyn_into::<Promise>()
        .ok()
}

/// Waits for a mirror write [`apply`] started, for a bounded time from
/// now: the worker's `settle` never rejects, and marks the mirror as
/// behind (not to be restored from) when the write failed or is late.
pub(crate) async fn settle(write: Promise) {
    let Some((mirror, settle)) = function("settle") else {
        return;
    };
    if let Ok(Ok(promise)) = settle
        .call1(&mirror, &write)
        .map(|p| p.dyn_into::<Promise>())
    {
        let _ = JsFuture::from(promise).await;
    }
}
