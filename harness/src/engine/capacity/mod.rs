//! The pieces of `vmsbench capacity` below the command: the deployment it grows
//! ([`shape`]) and the search that decides which camera count to try next ([`search`]).

pub(crate) mod search;
pub(crate) mod shape;
