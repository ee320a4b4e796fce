//! vmsbench library.
