//! The vault's marker outside IndexedDB: which identity this browser's vault
//! has, kept in the Cache API (`caches`, storage the browser keeps apart from
//! IndexedDB).
//!
//! Chromium deletes a site's whole IndexedDB when it finds it damaged on
//! open (its log: "recovering from a corrupted (and deleted) database") —
//! seen here after about one SIGKILL of the browser in 130 during writes. The
//! vault would then boot on empty storage and silently make a new identity:
//! every app would find an empty vault and a stranger's keys. With the marker
//! the engine is told which identity to expect
//! (`VaultConfig::expected_identity`) and refuses to start with
//! `rpc.storage_lost` instead; the person decides on the manage page to start
//! a new vault, which forgets the marker ([`forget_lost_vault`]).
//!
//! Best effort by design: where the Cache API is missing or refuses (an
//! insecure context, some private modes), the vault works as before, without
//! the check — the marker guards against a loss, it is not needed to work.

use js_sys::{Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use echo_core::identity::IdentityPublicKey;

use crate::keyring::describe;

/// The Cache API cache of markers. Not `echo-<site>-…`: the service worker
/// (`worker/sw.ts`) deletes other versions' caches by that prefix on
/// activate, and did delete the marker under its first name, `echo-vault-marker`.
const CACHE: &str = "echo-marker";

/// The request a database's marker is stored under (resolved against the
/// worker's URL: the vault origin).
fn key(database: &str) -> String {
    format!("echo-vault-marker/{database}")
}

async fn cache() -> Result<JsValue, String> {
    let caches = Reflect::get(&js_sys::global(), &"caches".into()).map_err(|e| describe(&e))?;
    if caches.is_undefined() || caches.is_null() {
        return Err("this context has no Cache API".into());
    }
    call(&caches, "open", &[CACHE.into()]).await
}

/// `target[method](...args)`, awaited.
async fn call(target: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, String> {
    let f = Reflect::get(target, &method.into())
        .map_err(|e| describe(&e))?
        .dyn_into::<js_sys::Function>()
        .map_err(|_| format!("{method} is not a function"))?;
    let array: js_sys::Array = args.iter().cloned().collect();
    let promise = f
        .apply(target, &array)
        .map_err(|e| describe(&e))?
        .dyn_into::<Promise>()
        .map_err(|_| format!("{method} did not return a promise"))?;
    JsFuture::from(promise).await.map_err(|e| describe(&e))
}

/// The identity the marker of `database` names, if there is one. A marker
/// that cannot be read or parsed counts as none (said on the console).
pub(crate) async fn read(database: &str) -> Option<IdentityPublicKey> {
    let read = async {
        let cache = cache().await?;
        let response = call(&cache, "match", &[key(database).into()]).await?;
        if response.is_undefined() {
            return Ok(None);
        }
        let text = call(&response, "text", &[]).await?;
        let text = text.as_string().ok_or("the marker is not text")?;
        text.trim()
            .parse::<IdentityPublicKey>()
            .map(Some)
            .map_err(|e| format!("the marker is not an identity: {e}"))
    };
    match read.await {
        Ok(identity) => identity,
        Err(reason) => {
            web_sys::console::warn_1(
                &format!("echo-vault: no check against lost storage: {reason}").into(),
            );
            None
        }
    }
}

/// Stores that `database` holds `identity` (once booted).
pub(crate) async fn write(database: &str, identity: &IdentityPublicKey) {
    let write = async {
        let cache = cache().await?;
        let response_ctor = Reflect::get(&js_sys::global(), &"Response".into())
            .map_err(|e| describe(&e))?
            .dyn_into::<js_sys::Function>()
            .map_err(|_| "this context has no Response".to_owned())?;
        let body: JsValue = identity.to_string().into();
        let response = Reflect::construct(&response_ctor, &js_sys::Array::of1(&body))
            .map_err(|e| describe(&e))?;
        call(&cache, "put", &[key(database).into(), response]).await?;
        Ok::<(), String>(())
    };
    if let Err(reason) = write.await {
        web_sys::console::warn_1(
            &format!("echo-vault: cannot store the marker against lost storage: {reason}").into(),
        );
    }
}

/// Forgets the marker of `database`: the person chose to start a new vault
/// where the old one's storage was lost. Rejects when the Cache API refuses.
#[wasm_bindgen(js_name = forgetLostVault)]
pub async fn forget_lost_vault(database: Option<String>) -> Result<(), JsValue> {
    let database = database.unwrap_or_else(|| crate::engine::DATABASE.to_owned());
    let cache = cache().await.map_err(|e| JsValue::from_str(&e))?;
    call(&cache, "delete", &[key(&database).into()])
        .await
        .map_err(|e| JsValue::from_str(&e))?;
    Ok(())
}
