//! Credentials inside stored messages (PROTOCOL.md §7.2): an attachment's own `auth` (§5.1) travels
//! in `messages.payload`, so its `token` and `password` are encrypted like every other secret
//! when a message is stored, and decrypted only in memory, just before the attachment is loaded.
//! `method` and `user` stay readable (listings show them, as for `client_auth`). Values stored
//! in clear by older versions are read as they are (the cipher passes unprefixed text through).

use serde_json::{Map, Value};

use super::{Result, Store};

/// The fields of an `auth` object that are secrets.
const SECRET_FIELDS: [&str; 2] = ["token", "password"];

/// Every string secret of every attachment's `auth` object.
fn attachment_secrets(attachments: &mut [Value]) -> impl Iterator<Item = &mut Value> {
    attachments
        .iter_mut()
        .filter_map(|a| a.get_mut("auth").and_then(Value::as_object_mut))
        .flat_map(|auth| {
            auth.iter_mut()
                .filter(|(k, v)| SECRET_FIELDS.contains(&k.as_str()) && v.is_string())
                .map(|(_, v)| v)
        })
}

impl Store {
    /// Encrypts the attachment credentials of a payload about to be stored.
    pub fn seal_attachment_auth(&self, payload: &mut Map<String, Value>) {
        let Some(Value::Array(attachments)) = payload.get_mut("attachments") else {
            return;
        };
        for secret in attachment_secrets(attachments) {
            if let Value::String(plain) = secret {
                *plain = self.cipher.encrypt(plain);
            }
        }
    }

    /// Decrypts the credentials of a stored message's attachments, in memory, for sending.
    pub fn open_attachment_auth(&self, attachments: &mut [Value]) -> Result<()> {
        for secret in attachment_secrets(attachments) {
            if let Value::String(stored) = secret {
                *stored = self.cipher.decrypt(stored)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{
        crypto::Cipher,
        store::{DbLocation, Store},
    };

    #[tokio::test]
    async fn secrets_are_sealed_and_opened_other_fields_kept() {
        let store = Store::open(&DbLocation::SqliteMemory, 1, Cipher::random())
            .await
            .unwrap();
        let original = json!({"id": "m", "attachments": [
            {"filename": "a", "storage_path": "p", "auth": {"method": "basic", "user": "u", "password": "pw-1"}},
            {"filename": "b", "storage_path": "q", "auth": {"method": "bearer", "token": "tok-1"}},
            {"filename": "c", "storage_path": "r"}]});
        let mut sealed = original.as_object().unwrap().clone();
        store.seal_attachment_auth(&mut sealed);
        let text = serde_json::to_string(&sealed).unwrap();
        assert!(!text.contains("pw-1") && !text.contains("tok-1"), "{text}");
        assert_eq!(sealed["attachments"][0]["auth"]["user"], "u");
        let mut attachments = sealed["attachments"].as_array().unwrap().clone();
        store.open_attachment_auth(&mut attachments).unwrap();
        assert_eq!(
            serde_json::Value::Array(attachments),
            original["attachments"]
        );
        store.close().await;
    }
}
