//! Identity, device keys, credentials, membership and signed changes.
