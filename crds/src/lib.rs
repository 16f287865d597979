//! Placeholder until the PressureTest types land.
