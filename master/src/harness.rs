//! MasterHarness: drives the core with inputs and a controlled clock.
