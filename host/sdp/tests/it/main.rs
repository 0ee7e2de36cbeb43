//! Integration tests of `pbx-sdp`, one binary: data-driven fixtures,
//! offer/answer scenarios, and a mutation loop.

mod fixtures;
mod mutation;
mod offer_answer;
mod support;
