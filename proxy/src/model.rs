//! The proxy's domain rules, free of I/O: message normalisation and validation ([`submit`]),
//! address syntax ([`address`]), retry classification and backoff ([`retry`]), rate-limit windows
//! ([`ratelimit`]), attachment names ([`attachment`]) and the stored form of a message as the
//! dispatcher reads it ([`stored`]). Everything here is a pure function,
//! tested with plain unit tests.

pub mod address;
pub mod attachment;
pub mod ratelimit;
pub mod retry;
pub mod stored;
pub mod submit;
