//! Tests of the keyspace state machine.
