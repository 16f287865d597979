//! The proxy's domain rules, free of I/O: message normalisation and validation ([`submit`]),
//! address syntax ([`address`]), retry classification and backoff ([`retry`]), rate-limit windows
//! ([`ratelimit`]) and attachment names ([`attachment`]). Everything here is a pure function,
//! tested with plain unit tests.

pub mod address;
pub mod attachment;
pub mod ratelimit;
pub mod retry;
pub mod submit;
