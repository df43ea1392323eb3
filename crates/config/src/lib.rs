//! zoo.cfg.
