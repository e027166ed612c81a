//! The rollout gate (in progress).
