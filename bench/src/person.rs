//! A person for the benchmarks: an identity key and one device certified by it.

use echo_core::identity::{DeviceCertificate, DeviceKey, IdentityKey};

pub struct Person {
    pub id: IdentityKey,
    pub dev: DeviceKey,
    pub cert: DeviceCertificate,
}

pub fn person() -> Person {
    let id = IdentityKey::generate().expect("OS randomness");
    let dev = DeviceKey::generate().expect("OS randomness");
    let cert = id
        .certify_device(&dev.request_authorization(id.public_key()))
        .expect("own request");
    Person { id, dev, cert }
}
