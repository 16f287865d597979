//! Placeholder until the client simulator lands.
fn main() {}
