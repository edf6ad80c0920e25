//! [`Keyring`]: the vault's wrapping key — a non-extractable WebCrypto
//! AES-GCM key kept in its own IndexedDB database — and sealing with it.
//!
//! The key is created on first run with `extractable: false`, so no script
//! (the vault's own included) can ever read its bytes; it is stored as a
//! `CryptoKey` object (IndexedDB keeps such keys by structured clone,
//! non-extractable as they are). The secret keys of the identity and the
//! device are sealed under it by `echo_core`'s two-step seal: the core
//! hands out plaintext and associated data, this module encrypts with
//! AES-256-GCM and a random 96-bit IV, and stores `iv ++ ciphertext+tag`.

use indexed_db_futures::database::Database;
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::{TransactionDurability, TransactionMode, TransactionOptions};
use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use echo_core::rpc::{codes, RpcError};

const DB: &str = "echo-vault-keys";
const STORE: &str = "keys";
const WRAP: &str = "wrap";
const IV_LEN: usize = 12;

/// The wrapping key of this vault.
pub struct Keyring {
    key: JsValue,
}

fn crypto_error(what: &str, e: JsValue) -> RpcError {
    RpcError::new(
        codes::INTERNAL,
        format!("WebCrypto failed to {what}: {}", describe(&e)),
    )
}

pub(crate) fn describe(e: &JsValue) -> String {
    if let Some(s) = e.as_string() {
        return s;
    }
    let name = Reflect::get(e, &"name".into())
        .ok()
        .and_then(|v| v.as_string());
    let message = Reflect::get(e, &"message".into())
        .ok()
        .and_then(|v| v.as_string());
    match (name, message) {
        (Some(n), Some(m)) => format!("{n}: {m}"),
        (Some(n), None) => n,
        (None, Some(m)) => m,
        _ => format!("{e:?}"),
    }
}

fn subtle() -> Result<web_sys::SubtleCrypto, RpcError> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into())
        .map_err(|e| crypto_error("find crypto", e))?;
    let subtle = Reflect::get(&crypto, &"subtle".into())
        .map_err(|e| crypto_error("find crypto.subtle", e))?;
    subtle.dyn_into::<web_sys::SubtleCrypto>().map_err(|_| {
        RpcError::new(
            codes::INTERNAL,
            "crypto.subtle is not available here (a secure context is needed)",
        )
    })
}

fn set(obj: &Object, key: &str, value: &JsValue) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(obj, &key.into(), value);
}

fn aes_gcm(iv: &[u8], aad: &[u8]) -> Object {
    let params = Object::new();
    set(&params, "name", &"AES-GCM".into());
    set(&params, "iv", &Uint8Array::from(iv).into());
    set(&params, "additionalData", &Uint8Array::from(aad).into());
    set(&params, "tagLength", &128.into());
    params
}

fn storage_error(e: impl std::fmt::Display) -> RpcError {
    RpcError::new(
        codes::STORAGE_BLOCKED,
        format!("the vault cannot use its key storage (IndexedDB {DB:?}): {e}"),
    )
}

async fn open_db() -> Result<Database, RpcError> {
    Database::open(DB)
        .with_version(1u32)
        .with_on_upgrade_needed(|event, db| {
            if event.old_version() < 1.0 {
                db.create_object_store(STORE).build()?;
            }
            Ok(())
        })
        .await
        .map_err(storage_error)
}

impl Keyring {
    /// Loads the wrapping key, creating it on first run.
    pub async fn open_or_create() -> Result<Keyring, RpcError> {
        let db = open_db().await?;
        let existing: Option<JsValue> = {
            let tx = db
                .transaction(STORE)
                .with_mode(TransactionMode::Readonly)
                .build()
                .map_err(storage_error)?;
            let store = tx.object_store(STORE).map_err(storage_error)?;
            store
                .get(WRAP)
                .primitive()
                .map_err(storage_error)?
                .await
                .map_err(storage_error)?
        };
        if let Some(key) = existing.filter(|k| !k.is_undefined() && !k.is_null()) {
            db.close();
            return Ok(Keyring { key });
        }
        let algorithm = Object::new();
        set(&algorithm, "name", &"AES-GCM".into());
        set(&algorithm, "length", &256.into());
        let usages = Array::of2(&"encrypt".into(), &"decrypt".into());
        let promise = subtle()?
            .generate_key_with_object(&algorithm, false, &usages)
            .map_err(|e| crypto_error("generate the wrapping key", e))?;
        let key = JsFuture::from(promise)
            .await
            .map_err(|e| crypto_error("generate the wrapping key", e))?;
        {
            let tx = db
                .transaction(STORE)
                .with_mode(TransactionMode::Readwrite)
                .with_options(
                    TransactionOptions::new().with_durability(TransactionDurability::Strict),
                )
                .build()
                .map_err(storage_error)?;
            let store = tx.object_store(STORE).map_err(storage_error)?;
            let _ = store
                .put(key.clone())
                .with_key(WRAP)
                .without_key_type()
                .primitive()
                .map_err(storage_error)?;
            tx.commit().await.map_err(storage_error)?;
        }
        db.close();
        Ok(Keyring { key })
    }

    /// Encrypts `plaintext`, authenticating `aad`: `iv ++ ciphertext+tag`.
    pub async fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, RpcError> {
        let mut iv = [0u8; IV_LEN];
        getrandom::fill(&mut iv).map_err(|e| {
            RpcError::new(codes::INTERNAL, format!("no random source for an IV: {e}"))
        })?;
        let key: web_sys::CryptoKey = self.key.clone().unchecked_into();
        let data = Uint8Array::from(plaintext);
        let promise: Promise = subtle()?
            .encrypt_with_object_and_buffer_source(&aes_gcm(&iv, aad), &key, &data)
            .map_err(|e| crypto_error("seal a key", e))?;
        let sealed = JsFuture::from(promise)
            .await
            .map_err(|e| crypto_error("seal a key", e))?;
        data.fill(0, 0, data.length());
        let mut out = iv.to_vec();
        out.extend(Uint8Array::new(&sealed).to_vec());
        Ok(out)
    }

    /// Decrypts what [`seal`](Self::seal) produced with the same `aad`.
    /// The caller zeroizes the result after use.
    pub async fn unseal(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, RpcError> {
        if sealed.len() < IV_LEN + 16 {
            return Err(RpcError::new(
                "identity.unseal_failed",
                "the sealed device key is truncated",
            ));
        }
        let (iv, body) = sealed.split_at(IV_LEN);
        let key: web_sys::CryptoKey = self.key.clone().unchecked_into();
        let promise: Promise = subtle()?
            .decrypt_with_object_and_buffer_source(&aes_gcm(iv, aad), &key, &Uint8Array::from(body))
            .map_err(|e| crypto_error("unseal the device key", e))?;
        let plain = JsFuture::from(promise).await.map_err(|e| {
            RpcError::new(
                "identity.unseal_failed",
                format!(
                    "the device key does not open with this vault's wrapping key ({}); the key storage was reset or the record is damaged",
                    describe(&e)
                ),
            )
        })?;
        let array = Uint8Array::new(&plain);
        let out = array.to_vec();
        array.fill(0, 0, array.length());
        Ok(out)
    }
}
