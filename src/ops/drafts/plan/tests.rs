//! Tests of the merge planner.
