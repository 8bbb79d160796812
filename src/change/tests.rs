//! Unit tests for change effects.
