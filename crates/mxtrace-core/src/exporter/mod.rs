//! The engine side of `mxtrace serve`, the Prometheus exporter: its configuration (modules and
//! their allowlists) and the rendering of a probe's or trace's report as Prometheus metrics.
//! No HTTP here: the front end serves these (ARCHITECTURE.md).

pub mod allow;
pub mod config;
